"""What the serving check measured, as the eval report keeps it: figures per load (one
request at a time, then the declared concurrency), the hardware and engine that measured
them, and the parity of each served form with the PEFT outputs the eval scored."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float


@dataclass(frozen=True)
class LoadFigures:
    """One pass over the eval prompts at one concurrency."""

    concurrency: int
    requests: int
    ttft_ms: Percentiles
    """Time to the first streamed token, as the client sees it."""
    latency_ms: Percentiles
    """The whole response, request sent to last byte."""
    tokens_per_second: Percentiles
    """Each response's output tokens over its latency."""
    output_tokens: Percentiles


@dataclass(frozen=True)
class DivergingItem:
    item_id: str
    agreement: float
    """The share of the first N tokens that match the PEFT output's, position by position."""
    reference: str
    """The PEFT output the eval scored."""
    served: str


@dataclass(frozen=True)
class Parity:
    """One served form (the engine with the LoRA module, or the merged weights) against the
    PEFT outputs, greedy, on the same prompts."""

    form: str
    tokens: int
    """N: how many leading tokens of each output are compared."""
    token_agreement: float
    """The mean over items of the share of the first N tokens that agree."""
    metric: str
    reference_score: float
    served_score: float
    items: int
    diverged: int
    """How many items' first N tokens differ at all."""
    diverging: list[DivergingItem] = field(default_factory=list)
    """The items whose first N tokens differ, least agreement first (at most a few)."""

    @property
    def metric_drop(self) -> float:
        """How much the primary metric loses when served this way (negative: it gains)."""
        return self.reference_score - self.served_score


@dataclass(frozen=True)
class ServingMeasurement:
    engine: str
    """e.g. "vLLM 0.32.0"."""
    hardware: str
    """What measured it, in words, e.g. "cpu: Intel(R) Xeon(R) ... (2 cores)"."""
    hardware_class: str
    """`cpu`, or the GPU's short name (`a10g`, `h200`), to match `serving.hardware`."""
    start_seconds: float
    """From launching the server to its first healthy answer."""
    peak_memory_mb: float
    """The server's process tree, at its largest during the check (resident memory)."""
    loads: list[LoadFigures] = field(default_factory=list)
    parity: list[Parity] = field(default_factory=list)
