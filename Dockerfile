# The same set-up as the README's `make studio`: a venv with the pinned torch first, then the project.
# CPU by default: PyTorch's CPU wheels (torch and its libraries 0.9 GB in the venv) instead of PyPI's default
# CUDA build (4.7 GB, measured 2026-11-29), which a CPU Space never uses.
# With an NVIDIA GPU: docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
FROM python:3.12-slim
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV TORCH_INDEX_URL=${TORCH_INDEX_URL} \
    STUDIO_HOME=/data/studio \
    GRADIO_SERVER_NAME=0.0.0.0 \
    PORT=7860 \
    PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN ./scripts/setup.sh
EXPOSE 7860
CMD ["make", "studio"]
