"""The Chia corpus reader for the scorer: it lives in the leaf module `pipeline.chia`, below every stage,
because the rules backend learns its lexicon from the same files."""

from pipeline.chia import DOMAIN_TYPES, ChiaDocument, ChiaEntity, read_chia_dir, read_chia_document

__all__ = ["DOMAIN_TYPES", "ChiaDocument", "ChiaEntity", "read_chia_dir", "read_chia_document"]
