"""Type stub of the optional compiled accelerator (gateway/rewrite/_rewrite_accel.c)."""

NOT_OBJECT: int
NEEDS_PYTHON: int

class Rewriter:
    def __init__(
        self,
        prefixes: tuple[bytes, ...],
        swap_target: bytes | None,
        swap_source: bytes | None,
        templates: tuple[tuple[bytes | None, ...], ...],
    ) -> None: ...
    def rewrite(self, body: bytes, public: bytes) -> bytes | int | None: ...
