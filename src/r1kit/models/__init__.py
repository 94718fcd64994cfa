"""Models: the char tokenizer, tiny presets, GGUF and packaged models, loading any HF causal LM, LoRA, saving.
Each concept has its module; the names callers use are re-exported here."""

from r1kit.models.gguf import PACKAGED_MODELS, ModelNotFoundError, cache_root, packaged_smollm2, resolve_model_path  # noqa: F401
from r1kit.models.loading import apply_lora, check_hub_model, holds_model, load_model, load_tokenizer, looks_like_path, save_model  # noqa: F401
from r1kit.models.presets import PRESETS, build_tiny_model, count_parameters  # noqa: F401
from r1kit.models.tokenizer import build_char_tokenizer  # noqa: F401
