"""The Ollama side of a GGUF export: the chat template as an Ollama (Go) template, the stop tokens, the
Modelfile, and the README that says how to run the files.

Ollama cannot run a Jinja chat template, so the template is probed: rendered with marker messages, the text
around each marker is what the model sees before and after a system, user or assistant turn. Those pieces
(``TemplateParts``) become a Go template that lays out any conversation the same way; ``render_parts`` lays one
out in Python, so a test can check the pieces against the Jinja template on many conversations.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ExportError

ROLES = ("system", "user", "assistant")
_MARK = {"system": "\u27e6S7\u27e7", "user": "\u27e6U7\u27e7", "user2": "\u27e6V7\u27e7",
         "assistant": "\u27e6A7\u27e7"}


@dataclass(frozen=True)
class TemplateParts:
    """A chat template as text pieces: ``head`` once, then per message ``prefix[role] + content + suffix[role]``,
    then ``generation`` to open the answer.

    Attributes:
        head: text at the very start (a BOS the tokenizer does not add itself), possibly empty.
        prefix: role -> text before the message's content.
        suffix: role -> text after it (the end-of-turn marker).
        generation: the header that opens the assistant's answer.
        default_system: the system message the template adds when a conversation has none (None when it adds
            none; an empty string when it adds an empty system block).
        bos: the begin-of-sequence text the template writes first although the tokenizer adds it by itself;
            llama.cpp and Ollama add it too, so the Ollama template leaves it out (else it would come twice).
    """

    head: str
    prefix: dict
    suffix: dict
    generation: str
    default_system: str | None
    bos: str = ""


def template_parts(tokenizer) -> TemplateParts:
    """Probe the tokenizer's chat template into ``TemplateParts``.

    Raises:
        ExportError: the template lays turns out in a way these pieces cannot express (it depends on more than
            the role, drops markers, or needs a system message first).
    """
    from ..models.templates import render

    def draw(messages, generation=False) -> str:
        try:
            return render(tokenizer, [{"role": r, "content": _MARK[k]} for k, r in messages], generation)
        except Exception as exc:  # a template that raises on a shape of conversation
            raise _inexpressible(f"rendering a probe conversation failed ({exc})") from None

    four = [("system", "system"), ("user", "user"), ("assistant", "assistant"), ("user2", "user")]
    full = draw(four, generation=True)
    closed = draw(four)
    after_answer = draw(four[:3])
    user_only = draw([("user", "user")])
    at = {k: full.find(m) for k, m in _MARK.items()}
    if min(at.values()) < 0 or not closed.startswith(full[:at["user2"]]):
        raise _inexpressible("the probe messages did not come out in order")
    end = {k: at[k] + len(_MARK[k]) for k in at}
    suffix_user = closed[end["user2"]:]
    suffix_assistant = after_answer[end["assistant"]:]
    between = {"system": full[end["system"]:at["user"]], "user": full[end["user"]:at["assistant"]],
               "assistant": full[end["assistant"]:at["user2"]]}
    if not between["assistant"].startswith(suffix_assistant) or not full[end["user2"]:].startswith(suffix_user):
        raise _inexpressible("an answer's end marker differs inside and at the end of a conversation")
    prefix_user = between["assistant"][len(suffix_assistant):]
    if not between["user"].startswith(suffix_user) or not between["system"].endswith(prefix_user):
        raise _inexpressible("a turn's markers depend on the turn before it")
    prefix_assistant = between["user"][len(suffix_user):]
    suffix_system = between["system"][:len(between["system"]) - len(prefix_user)]
    lead = full[:at["system"]]
    head, prefix_system, default = _head_and_system(lead, user_only, prefix_user, suffix_system)
    prefixes = {"system": prefix_system, "user": prefix_user, "assistant": prefix_assistant}
    head, bos = _split_bos(tokenizer, head, prefixes)
    parts = TemplateParts(head, prefixes, {"system": suffix_system, "user": suffix_user, "assistant": suffix_assistant},
                          full[end["user2"] + len(suffix_user):], default, bos)
    for probe in (full, user_only):  # the pieces must give back exactly what the template gave
        messages = [{"role": r, "content": _MARK[k]} for k, r in (four if probe is full else [("user", "user")])]
        if render_parts(parts, messages, True if probe is full else False) != probe:
            raise _inexpressible("its pieces do not add up to the template's own text")
    return parts


def _head_and_system(lead: str, user_only: str, prefix_user: str, suffix_system: str):
    """Split the text before the system content into the file head and the system prefix, and find the
    system message the template adds to conversations without one.

    ``lead`` is head + system prefix; ``start`` (the text before the lone user turn's prefix) is the head alone,
    or head + system prefix + default + system suffix when the template adds a system turn by itself.
    """
    before_user = user_only[:user_only.find(_MARK["user"])]
    if not before_user.endswith(prefix_user):
        raise _inexpressible("the first user turn is laid out differently from later ones")
    start = before_user[:len(before_user) - len(prefix_user)]
    if len(start) > len(lead) and start.startswith(lead) and start.endswith(suffix_system):
        default = start[len(lead):len(start) - len(suffix_system)]
        guess = prefix_user.replace("user", "system")  # to tell a head (BOS) from the system header
        head = lead[:len(lead) - len(guess)] if guess != prefix_user and lead.endswith(guess) else ""
        return head, lead[len(head):], default
    if lead.startswith(start):
        return start, lead[len(start):], None
    raise _inexpressible("the system turn it adds by itself cannot be separated from the rest")


def _split_bos(tokenizer, head: str, prefixes: dict) -> tuple[str, str]:
    """Take a leading BOS out of the head (or, when there is no head, the system prefix) when the tokenizer
    adds one by itself."""
    bos = tokenizer.bos_token or ""
    adds = bool(bos) and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
    if not adds:
        return head, ""
    if head.startswith(bos):
        return head[len(bos):], bos
    if not head and prefixes["system"].startswith(bos):
        prefixes["system"] = prefixes["system"][len(bos):]
        return head, bos
    return head, ""


def _inexpressible(why: str) -> ExportError:
    return ExportError(f"The model's chat template cannot be turned into an Ollama template ({why}). The GGUF "
                       "files carry the original template, which llama.cpp and LM Studio use; for Ollama, write "
                       "the TEMPLATE in the Modelfile by hand.")


def render_parts(parts: TemplateParts, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """A conversation laid out from the pieces, exactly as the Go template in the Modelfile lays it out.

    Args:
        parts: from ``template_parts``.
        messages: role/content turns.
        add_generation_prompt: end with the header that opens the answer.
    """
    out = [parts.bos, parts.head]
    if parts.default_system is not None and not any(m["role"] == "system" for m in messages):
        out.append(parts.prefix["system"] + parts.default_system + parts.suffix["system"])
    for m in messages:
        out.append(parts.prefix[m["role"]] + m["content"] + parts.suffix[m["role"]])
    if add_generation_prompt:
        out.append(parts.generation)
    return "".join(out)


def go_template(parts: TemplateParts) -> str:
    """The pieces as an Ollama TEMPLATE (Go text/template over ``.Messages``).

    A default system message is not written here: the Modelfile's SYSTEM line makes Ollama put it first when a
    request has no system message, as the original template does. An empty default system block (Llama 3 writes
    its header even without a system message) is written when no message is a system one. No action trims
    whitespace (``{{-``): the turn markers' own newlines must stay.
    """
    out = [_go_text(parts.head)]
    if parts.default_system == "":
        out.append('{{ $system := false }}{{ range .Messages }}{{ if eq .Role "system" }}{{ $system = true }}'
                   "{{ end }}{{ end }}{{ if not $system }}"
                   + _go_text(parts.prefix["system"] + parts.suffix["system"]) + "{{ end }}")
    out.append("{{ range .Messages }}")
    for i, role in enumerate(ROLES):
        keyword = "if" if i == 0 else "else if"
        out.append(f'{{{{ {keyword} eq .Role "{role}" }}}}{_go_text(parts.prefix[role])}{{{{ .Content }}}}'
                   f"{_go_text(parts.suffix[role])}")
    out.append("{{ end }}{{ end }}" + _go_text(parts.generation))
    return "".join(out)


def _go_text(text: str) -> str:
    """Literal text inside a Go template: only ``{{`` needs escaping."""
    return text.replace("{{", '{{ "{{" }}')


def stop_tokens(parts: TemplateParts, tokenizer) -> list[str]:
    """The special tokens that end a turn (they appear in the turn suffixes), and the end-of-sequence token."""
    specials = [t for t in getattr(tokenizer, "all_special_tokens", []) if t]
    specials += [t.content for t in tokenizer.added_tokens_decoder.values() if t.special]
    ends = parts.suffix["assistant"] + parts.suffix["user"]
    found = [t for t in dict.fromkeys(specials) if t in ends]
    if tokenizer.eos_token and tokenizer.eos_token not in found:
        found.append(tokenizer.eos_token)
    return found


def modelfile(gguf_name: str, parts: TemplateParts, stops: list[str], temperature: float = 0.7) -> str:
    """An Ollama Modelfile for the GGUF file ``gguf_name`` lying beside it.

    Args:
        gguf_name: the GGUF file's name (FROM is relative to the Modelfile).
        parts: the chat template's pieces.
        stops: stop sequences (the end-of-turn tokens).
        temperature: the default sampling temperature.
    """
    lines = ["# Made by Finetune Studio. Import with: ollama create <name> -f Modelfile", f"FROM ./{gguf_name}", "",
             f'TEMPLATE """{go_template(parts)}"""', ""]
    if parts.default_system:
        lines += [f'SYSTEM """{parts.default_system}"""', ""]
    lines += [f'PARAMETER stop "{_quoted(s)}"' for s in stops]
    lines.append(f"PARAMETER temperature {temperature:g}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def readme(result, run, config) -> str:
    """The GGUF folder's README: the files, how to run them (Ollama, llama.cpp, LM Studio, Python), the check.

    Args:
        result: the ``GGUFExport`` (files, Modelfile, check).
        run: the ``RunDir`` the model comes from (its model card is appended).
        config: the run's ``JobConfig``.
    """
    sizes = [f"| `{p.name}` | {kind} | {p.stat().st_size / 1e6:,.1f} MB |" for kind, p in result.files.items()]
    lines = [f"# {result.ollama_name} (GGUF)", "",
             f"`{run.name}`, fine-tuned from `{config.model}` in Finetune Studio, as GGUF files for llama.cpp, "
             "Ollama and LM Studio.", "", "| file | type | size |", "|---|---|---|", *sizes, "",
             "## Run it", "", "Ollama (inside this folder):", "", "```bash", result.ollama_command,
             f"ollama run {result.ollama_name}", "```", "", "llama.cpp:", "", "```bash",
             f"llama-cli -m {result.ollama_file.name} -cnv", f"llama-server -m {result.ollama_file.name} --port 8080",
             "```", "", "LM Studio: copy a `.gguf` file into its models folder (or `lms import FILE`).", "",
             "Python (transformers reads GGUF too):", "", "```python",
             "from transformers import AutoModelForCausalLM, AutoTokenizer",
             f'model = AutoModelForCausalLM.from_pretrained(".", gguf_file="{result.ollama_file.name}")',
             f'tokenizer = AutoTokenizer.from_pretrained(".", gguf_file="{result.ollama_file.name}")', "```", ""]
    if result.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    if result.check:
        c = result.check
        lines += ["## Checked after writing", "",
                  f"`{c['file'].rsplit('/', 1)[-1]}` was loaded back with transformers' GGUF reader: "
                  f"{c['same_answers']} of {c['prompts']} greedy answers match the merged model token for token; "
                  f"tokenization {'matches' if c['same_tokenization'] else 'DIFFERS'}; chat template "
                  f"{'matches' if c['same_template'] else 'DIFFERS'}; largest logit difference "
                  f"{c['max_logit_difference']:.4g}.", ""]
    if run.card.is_file():
        lines += ["---", "", "# The run's model card", "", _without_front_matter(run.card.read_text(encoding="utf-8"))]
    return "\n".join(lines)


def _without_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end > 0:
            return text[end + 5:].lstrip()
    return text
