"""The character-level tokenizer of the tiny world: one token per ASCII character, plain-text role markers."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]  # ids 0..3, in this order
ASCII = "".join(chr(i) for i in range(128))  # all of ASCII, so any ASCII text round-trips

# Role markers as plain text: "user: 12+3\nassistant: 15<|eos|>". The assistant turn ends
# with EOS and nothing after it, so TRL's prompt/completion split trains exactly
# "15<|eos|>" and the model learns when to stop; {% generation %} marks the same tokens
# for `assistant_only_loss` / `return_assistant_tokens_mask`.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ 'assistant: ' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}"  # Jinja's escape, not a raw newline
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'assistant: ' }}{%- endif -%}"
)


def build_char_tokenizer(extra_chars: str = "") -> PreTrainedTokenizerFast:
    """One token per character: the 4 special tokens, all 128 ASCII chars, then `extra_chars`.

    A BPE model with no merges over a whole-string "word" is exactly a char lookup, and
    the Fuse decoder joins tokens back without spaces, so decode(encode(s)) == s for ASCII.
    Other characters become <|unk|>. No BOS/EOS is added on encode (like Qwen tokenizers):
    TRL appends EOS itself and the chat template supplies the rest.
    """
    chars = list(dict.fromkeys(ASCII + extra_chars))  # dedupe, keep order
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",  # batched generation needs left padding; TRL collators pad on their own
        clean_up_tokenization_spaces=False,  # else " ," decodes to ","
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
