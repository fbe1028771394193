"""How a candidate f0 track compares with a golden one: cents error and voicing agreement, excusing the frames
whose decoding a float32 rounding may legitimately change.

Shared by every golden set with a pitch track (RMVPE's `f0`; the pipeline's pitch later).
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Upstream `RMVPE.decode`'s voicing threshold: a frame whose largest salience is <= 0.03 is unvoiced. Golden
# sets record the threshold they were made with; this is the default when they do not.
THRESHOLD = 0.03
# Agreement the f0 stage must reach on frames whose voicing is not ambiguous (see `f0_agreement`).
MAX_F0_CENTS_ERROR = 0.01
AMBIGUOUS_SALIENCE_MARGIN = 1e-4


def f0_cents_error(reference_f0: np.ndarray, candidate_f0: np.ndarray) -> np.ndarray:
    """|1200 log2(candidate / reference)| on frames voiced in both (NaN elsewhere)."""
    reference = np.asarray(reference_f0, dtype=np.float64)
    candidate = np.asarray(candidate_f0, dtype=np.float64)
    both = (reference > 0) & (candidate > 0)
    error = np.full(reference.shape, np.nan)
    error[both] = np.abs(1200.0 * np.log2(candidate[both] / reference[both]))
    return error


def voicing_agreement(reference_f0: np.ndarray, candidate_f0: np.ndarray) -> float:
    """Fraction of frames that both call voiced or both call unvoiced (f0 > 0 is voiced)."""
    reference = np.asarray(reference_f0) > 0
    candidate = np.asarray(candidate_f0) > 0
    return float(np.mean(reference == candidate)) if reference.size else 1.0


def ambiguous_frames(
    salience: np.ndarray, threshold: float = THRESHOLD, margin: float = AMBIGUOUS_SALIENCE_MARGIN
) -> np.ndarray:
    """Frames whose decoding a rounding difference may legitimately change: the largest salience within
    `margin` of the threshold (voicing), or the two largest bins within `margin` of each other (argmax)."""
    salience = np.asarray(salience, dtype=np.float64)
    top_two = -np.partition(-salience, 1, axis=-1)[..., :2]
    near_threshold = np.abs(top_two[..., 0] - threshold) <= margin
    near_tie = top_two[..., 0] - top_two[..., 1] <= margin
    return near_threshold | near_tie


@dataclasses.dataclass(frozen=True)
class F0Agreement:
    """How a candidate f0 track compares with the golden one."""

    frames: int
    ambiguous_frames: int
    voicing_agreement: float  # over all frames
    voicing_mismatches: int  # on frames that are not ambiguous
    max_cents_error: float  # over frames voiced in both and not ambiguous (0 if none)
    voiced_frames: int  # voiced in the golden

    @property
    def passed(self) -> bool:
        return self.voicing_mismatches == 0 and self.max_cents_error <= MAX_F0_CENTS_ERROR

    def summary(self) -> str:
        return (
            f"max f0 error {self.max_cents_error:.4g} cents, voicing agreement {100 * self.voicing_agreement:.2f}% "
            f"({self.voicing_mismatches} unambiguous mismatches; {self.ambiguous_frames} of {self.frames} frames "
            f"ambiguous; {self.voiced_frames} voiced)"
        )


def f0_agreement(
    reference_f0: np.ndarray, candidate_f0: np.ndarray, reference_salience: np.ndarray, threshold: float = THRESHOLD
) -> F0Agreement:
    """Cents error and voicing agreement, ignoring frames the golden salience marks as ambiguous."""
    reference = np.asarray(reference_f0, dtype=np.float64)
    candidate = np.asarray(candidate_f0, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"f0 shapes differ: golden {reference.shape}, candidate {candidate.shape}")
    clear = ~ambiguous_frames(reference_salience, threshold)
    mismatched = ((reference > 0) != (candidate > 0)) & clear
    errors = f0_cents_error(reference, candidate)[clear]
    errors = errors[~np.isnan(errors)]
    return F0Agreement(
        frames=int(reference.size),
        ambiguous_frames=int((~clear).sum()),
        voicing_agreement=voicing_agreement(reference, candidate),
        voicing_mismatches=int(mismatched.sum()),
        max_cents_error=float(errors.max()) if errors.size else 0.0,
        voiced_frames=int((reference > 0).sum()),
    )
