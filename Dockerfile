# The same set-up as the README's `make studio`: a venv with the pinned CPU torch first, then the project.
# With an NVIDIA GPU: build with --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim
ARG TORCH_INDEX_URL=
ENV TORCH_INDEX_URL=${TORCH_INDEX_URL} \
    STUDIO_HOME=/data/studio \
    GRADIO_SERVER_NAME=0.0.0.0 \
    PORT=7860 \
    PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN PYTHON=python3.11 ./scripts/setup.sh
EXPOSE 7860
CMD ["make", "studio"]
