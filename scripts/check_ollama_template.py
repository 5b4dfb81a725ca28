"""Check the Ollama TEMPLATE the GGUF export writes with Go's own text/template (what Ollama runs), outside the
test suite: every conversation must come out exactly as the model's Jinja chat template lays it out.

Needs a Go toolchain (Debian: apt-get install golang-go). Ollama prepends the Modelfile's SYSTEM as a system
message when a request has none; this script does the same before rendering.

    .venv/bin/python scripts/check_ollama_template.py                        # the tiny test tokenizer
    .venv/bin/python scripts/check_ollama_template.py --model smollm2-135m-instruct
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A Go program: reads {"template": ..., "conversations": [[{Role, Content}...]...]} and prints the renderings.
GO_MAIN = r"""
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string
	Content string
}

type Job struct {
	Template      string
	Conversations [][]Message
}

func main() {
	var job Job
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		panic(err)
	}
	tmpl := template.Must(template.New("ollama").Parse(job.Template))
	out := []string{}
	for _, messages := range job.Conversations {
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]any{"Messages": messages}); err != nil {
			panic(err)
		}
		out = append(out, b.String())
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a catalog key or model folder (default: the tests' tiny ChatML tokenizer)")
    parser.add_argument("--home", help="the studio home")
    parser.add_argument("--template", help="a Jinja chat template file to check instead of the tokenizer's own")
    args = parser.parse_args()

    from core.export import ollama
    from tests.test_chat_support import conversations

    tokenizer = _tokenizer(args)
    if args.template:
        tokenizer.chat_template = Path(args.template).read_text(encoding="utf-8")
    parts = ollama.template_parts(tokenizer)
    cases = [c[:cut] for c in conversations(40) for cut in range(1, len(c) + 1) if c[cut - 1]["role"] == "user"]
    sent = [_with_system(c, parts.default_system) for c in cases]
    job = {"Template": ollama.go_template(parts),
           "Conversations": [[{"Role": m["role"], "Content": m["content"]} for m in c] for c in sent]}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "main.go").write_text(GO_MAIN, encoding="utf-8")
        done = subprocess.run(["go", "run", "main.go"], cwd=folder, input=json.dumps(job), capture_output=True,
                              text=True)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    rendered = json.loads(done.stdout)
    bos = parts.bos  # llama.cpp and Ollama add it from the tokenizer; the template leaves it out
    wrong = [(c, g) for c, g in zip(cases, rendered)
             if bos + g != tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)]
    print(f"{len(cases) - len(wrong)} of {len(cases)} conversations rendered by Go's text/template exactly as the "
          "Jinja chat template renders them.")
    for conversation, got in wrong[:3]:
        print(f"  differs: {conversation!r}\n  go:    {got!r}")
    return 1 if wrong else 0


def _tokenizer(args):
    if not args.model:
        from tests.test_chat_support import save_tiny_tokenizer
        return save_tiny_tokenizer(Path(tempfile.mkdtemp()))
    from core.home import Home
    from core.models import load_tokenizer, resolve_model
    return load_tokenizer(resolve_model(args.model, Home.resolve(args.home), task="chat"))


def _with_system(conversation: list[dict], default: str | None) -> list[dict]:
    """What Ollama hands the template: the Modelfile's SYSTEM first when the request has no system message."""
    if default and conversation[0]["role"] != "system":
        return [{"role": "system", "content": default}] + conversation
    return conversation


if __name__ == "__main__":
    sys.exit(main())
