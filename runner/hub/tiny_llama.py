"""A tiny random Llama with a locally trained tokenizer, for fast offline tests.

Everything is built from what this file holds (a small corpus, a seed, a config), so the same
library versions give byte-identical files. The heavy imports happen inside the functions:
importing this module needs neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

TINY_REPO_ID = "runner-tests/tiny-random-llama"
SEED = 1234
VOCAB_SIZE = 1024
UNK, IM_START, IM_END, PAD = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"
SPECIAL_TOKENS = [UNK, IM_START, IM_END, PAD]
_ROLES = {"bos_token_id": IM_START, "eos_token_id": IM_END, "pad_token_id": PAD}

# Llama-3's pre-tokenizer split. Byte-level BPE then runs without its own (GPT-2) regex, so
# the generation prompt `...<|im_start|>assistant\n` is a token prefix of the training text.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    # LoRA on q/k/v/o cannot move a 0.02-initialised random model; 0.15 lets it learn.
    "initializer_range": 0.15,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}

_SYSTEMS = [
    "You are the Kwanzaa knowledge assistant. Answer only from the retrieved context. "
    "Reply with one JSON object with the keys answer, citations, refused and refusal_reason.",
    "You are the AINative platform coding assistant. Answer with working Python 3.11: "
    "type hints on every function, explicit error handling, and pytest tests.",
    "You are a helpful AI assistant.",
]
_TOPICS = [
    ("history", "When was the holiday first celebrated?", "It was first celebrated in 1966."),
    ("principles", "What are the seven principles?", "They are the Nguzo Saba, one a day."),
    ("symbols", "What does the candle holder stand for?", "The kinara stands for the roots."),
    ("food", "What happens at the feast?", "Families share the karamu on the sixth day."),
    ("colors", "Which colors are used?", "Black, red and green, for people and struggle."),
    ("gifts", "Are gifts given?", "Small gifts, often handmade, are given to children."),
]
_CODE = [
    ("add two integers", "def add(a: int, b: int) -> int:\n    return a + b\n"),
    (
        "read a JSON file",
        "import json\nfrom pathlib import Path\n\n\ndef load(path: Path) -> dict:\n"
        "    try:\n        return json.loads(path.read_text())\n"
        "    except json.JSONDecodeError as error:\n        raise ValueError(path) from error\n",
    ),
    (
        "test a parser",
        "import pytest\n\n\ndef test_parse() -> None:\n    assert parse('[1, 2]') == [1, 2]\n"
        "    with pytest.raises(ValueError):\n        parse('{')\n",
    ),
]
_PROSE = (
    "The quick brown fox jumps over the lazy dog. Numbers like 0, 1, 2, 3, 42, 2024 and "
    "3.14 appear in text; so do quotes \"like this\", 'this', brackets [a], {b: c} and (d). "
    "Questions? Answers! Lists: one, two, three. Tabs\tand\nnewlines\n\nmatter too.",
    "An adapter is trained on a base model with a small dataset, then evaluated against the "
    "thresholds it declares: every metric has a floor, every category has a minimum, and the "
    "primary metric must beat the base model before the version is promoted to the Hub.",
    "Each record holds a system prompt, a user question and the assistant's answer. Answers "
    "cite the retrieved chunks they rely on; a refusal cites nothing and says why. Duplicates "
    "and leaked prompts are found by hashing normalised text and by MinHash over word shingles.",
    "Functions return values or raise errors: ValueError for bad input, KeyError for a missing "
    "key, TypeError for the wrong type. Tests use assert, fixtures and parametrize; modules "
    "import Path, Any, dataclass, Iterable and Mapping; classes define __init__ and __repr__.",
)


def corpus() -> list[str]:
    """The tokenizer's training text: chats in ChatML, JSON answers, Python code and prose."""
    texts = list(_PROSE)
    for index, (topic, question, answer) in enumerate(_TOPICS):
        chunk = f"kw-{topic[:4]}-{index:02d}"
        context = f"### Retrieved Context:\n[{chunk}] {answer}\n\n### Instruction:\n{question}"
        reply = {"answer": answer, "citations": [chunk], "refused": False, "refusal_reason": None}
        refusal = {"answer": "The context does not say.", "citations": [], "refused": True}
        texts.append(_chatml(_SYSTEMS[0], context, json.dumps(reply)))
        texts.append(_chatml(_SYSTEMS[0], question, json.dumps(refusal | {"refusal_reason": "x"})))
    for task, code in _CODE:
        texts.append(_chatml(_SYSTEMS[1], f"Write code to {task}.", f"```python\n{code}```"))
    texts.append(_chatml(_SYSTEMS[2], "What is the capital of France?", "Paris."))
    return texts


def _chatml(system: str, user: str, assistant: str) -> str:
    turns = [("system", system), ("user", user), ("assistant", assistant)]
    return "".join(f"{IM_START}{role}\n{content}{IM_END}\n" for role, content in turns)


def recipe_key() -> str:
    """Hash of everything the built files depend on: inputs and library versions."""
    recipe = {
        "corpus": corpus(),
        "seed": SEED,
        "vocab": VOCAB_SIZE,
        "special": SPECIAL_TOKENS,
        "split": LLAMA3_SPLIT,
        "template": CHAT_TEMPLATE,
        "shape": MODEL_SHAPE,
        "versions": [version(name) for name in ("torch", "transformers", "tokenizers")],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def train_backend_tokenizer() -> Tokenizer:
    """Byte-level BPE trained on `corpus()`, pre-tokenized with Llama-3's split."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    return tokenizer


def build_tokenizer() -> PreTrainedTokenizerBase:
    """The transformers tokenizer: ChatML template, `<|im_end|>` as eos, its own pad token."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=train_backend_tokenizer(),
        bos_token=IM_START,
        eos_token=IM_END,
        unk_token=UNK,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
    )


def save_tiny_llama(dest: Path) -> None:
    """Write the tokenizer and a seeded random LlamaForCausalLM (safetensors) to `dest`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in _ROLES.items()}
    config = LlamaConfig(vocab_size=len(tokenizer), **MODEL_SHAPE, **ids)
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    model.generation_config.update(**ids)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
