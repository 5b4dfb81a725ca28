"""Check exported GGUF files with llama.cpp itself (through llama-cpp-python), outside the test suite.

llama-cpp-python ships as source on PyPI and compiles llama.cpp on install (about an hour on a busy 2-core CPU),
so it lives in its own virtual environment rather than the studio's:

    python -m venv /tmp/lcpp && /tmp/lcpp/bin/pip install llama-cpp-python
    .venv/bin/python scripts/check_gguf_llama_cpp.py --base smollm2-135m-instruct --llama-python /tmp/lcpp/bin/python
    .venv/bin/python scripts/check_gguf_llama_cpp.py --run ~/.finetune-studio/runs/RUN --llama-python /tmp/lcpp/bin/python

For each prompt it compares, between transformers (the merged model, fp32) and llama.cpp (each GGUF file):
the token ids of the rendered prompt, the greedy answer token by token, and the answer llama.cpp's own chat
handler gives from the file's chat template. The GGUF files go to a temporary folder (or --out).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = ["What is the capital of France?", "Write one sentence about the sea.", "List three prime numbers: 2, 3,"]

# Runs under the llama-cpp-python interpreter: JSON in on stdin, JSON out on stdout.
LLAMA_SIDE = r"""
import json, sys, time
from llama_cpp import Llama
job = json.load(sys.stdin)
out = []
for path in job["files"]:
    started = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=1024, n_threads=2, seed=0, verbose=False)
    load_s = time.perf_counter() - started
    rows = []
    for case in job["cases"]:
        ids = llm.tokenize(case["text"].encode("utf-8"), add_bos=False, special=True)
        tokens = []
        for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            if llm.token_eos() == token or len(tokens) >= job["max_new_tokens"]:
                break
            tokens.append(token)
        chat = llm.create_chat_completion(messages=[{"role": "user", "content": case["prompt"]}], temperature=0.0,
                                          top_k=1, repeat_penalty=1.0, max_tokens=job["max_new_tokens"])
        rows.append({"ids": ids, "tokens": tokens, "chat": chat["choices"][0]["message"]["content"]})
    out.append({"file": path, "load_s": round(load_s, 2), "cases": rows})
    del llm
json.dump(out, sys.stdout)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", help="a chat run folder: its merged model is exported and checked")
    what.add_argument("--base", help="a catalog key or model folder, checked as it is (no training needed)")
    parser.add_argument("--home", help="the studio home (default: $STUDIO_HOME or ~/.finetune-studio)")
    parser.add_argument("--types", default="f16,q8_0,q4_0", help="GGUF types to write and check")
    parser.add_argument("--llama-python", default=sys.executable, help="a Python with llama-cpp-python installed")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--out", help="where the GGUF files go (default: a temporary folder)")
    args = parser.parse_args()

    from core.home import Home

    home = Home.resolve(args.home)
    folder = Path(args.out or tempfile.mkdtemp(prefix="gguf-check-"))
    model, tokenizer, files = _export(args, home, folder)
    cases = _reference(model, tokenizer, args.max_new_tokens)
    job = {"files": [str(f) for f in files], "cases": cases, "max_new_tokens": args.max_new_tokens}
    done = subprocess.run([args.llama_python, "-c", LLAMA_SIDE], input=json.dumps(job), capture_output=True,
                          text=True)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    return _compare(json.loads(done.stdout), cases, tokenizer)


def _export(args, home, folder: Path):
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    if args.run:
        from core.config import JobConfig
        from core.export.gguf import export_gguf, load_merged_chat
        from core.runs import RunDir

        result = export_gguf(Path(args.run), folder / "gguf", home, types=types,
                             progress=lambda m, f: print(f"  {m}", file=sys.stderr))
        run = RunDir(Path(args.run))
        model, tokenizer = load_merged_chat(run, JobConfig.load(run.config), home)
        return model, tokenizer, list(result.files.values())
    import torch

    from core.export.gguf import write_gguf
    from core.models import load_causal_lm, load_tokenizer, resolve_model

    resolved = resolve_model(args.base, home, task="chat")
    model, tokenizer = load_causal_lm(resolved, dtype=torch.float32).eval(), load_tokenizer(resolved)
    files = []
    for kind in types:
        path = folder / f"{Path(str(args.base)).name}-{kind}.gguf"
        write_gguf(model, tokenizer, path, kind, name=str(args.base), base_model=str(args.base))
        files.append(path)
    return model, tokenizer, files


def _reference(model, tokenizer, max_new_tokens: int) -> list[dict]:
    import torch

    from core.models.templates import render

    cases = []
    for prompt in PROMPTS:
        text = render(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        tokens = [t for t in out[0, ids.shape[1]:].tolist() if t != tokenizer.eos_token_id]
        cases.append({"prompt": prompt, "text": text, "ids": ids[0].tolist(), "tokens": tokens,
                      "answer": tokenizer.decode(tokens, skip_special_tokens=True)})
    return cases


def _compare(results: list[dict], cases: list[dict], tokenizer) -> int:
    ok = True
    for result in results:
        print(f"\n{Path(result['file']).name} (llama.cpp loaded it in {result['load_s']} s)")
        for case, got in zip(cases, result["cases"]):
            same_ids = got["ids"] == case["ids"]
            agree = next((i for i, (a, b) in enumerate(zip(case["tokens"], got["tokens"])) if a != b),
                         min(len(case["tokens"]), len(got["tokens"])))
            wanted = len(case["tokens"])
            whole = agree == wanted == len(got["tokens"])
            answer = "identical" if whole else f"same for the first {agree} of {wanted} tokens"
            print(f"  {case['prompt']!r}: prompt tokens {'same' if same_ids else 'DIFFER'}; greedy answer {answer}")
            print(f"    transformers: {case['answer']!r}")
            print(f"    llama.cpp:    {tokenizer.decode(got['tokens'], skip_special_tokens=True)!r}")
            print(f"    llama.cpp chat handler (the file's template): {got['chat']!r}")
            ok &= same_ids
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
