"""Kaldi-compatible log-mel filterbank features, vectorized in torch (or numpy, without torch).

The computation follows Kaldi's ``compute-fbank-feats`` (and kaldi-native-fbank)
step by step, over all frames of an utterance at once:

1. frames of ``frame_length_ms`` every ``frame_shift_ms`` (``snip_edges=True``: only
   whole frames, ``1 + (N - L) // S`` of them; ``False``: ``(N + S // 2) // S`` frames
   centred on multiples of the shift, reflecting the signal at the edges);
2. dither (Gaussian noise of standard deviation ``dither``, in 16-bit sample units),
   DC-offset removal, pre-emphasis ``x[n] - 0.97 x[n-1]`` (``x[0] * (1 - 0.97)``),
   the Povey window ``(0.5 - 0.5 cos(2 pi n / (L - 1))) ** 0.85``;
3. zero-padding to a power of two, power spectrum ``|FFT|^2``;
4. triangular filters equally spaced on the mel scale ``1127 ln(1 + f / 700)`` between
   ``low_freq`` and ``high_freq``, then ``log(max(energy, FLT_EPSILON))``.

Samples are in 16-bit integer units (as Kaldi reads WAV files): pass int16 arrays, or
floats in [-1, 1] with ``scale_to_int16=True`` (the default for float input).

Dither is reproducible: :meth:`Fbank.extract` takes a ``seed`` (the extraction
pipeline derives it from the utterance id), so features do not change between runs.
Real audio rarely needs it; the silence inserted between connected digits does, as
``log(0)`` would otherwise give constant, degenerate frames.

``Fbank(config, backend="numpy")`` computes the same steps with numpy alone (no dither:
deployment turns it off), so that an exported model transcribes without torch; it equals
the torch backend to float32 rounding (tested on real audio). Training features always come
from the torch backend. This module imports torch only when the torch backend runs.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

if TYPE_CHECKING:
    import torch

FLT_EPSILON = 1.1920928955078125e-07
BACKENDS = ("torch", "numpy")


def mel_scale(freq):
    """Kaldi's mel scale: ``1127 ln(1 + f / 700)`` (a float or a numpy array)."""
    if isinstance(freq, np.ndarray):
        return 1127.0 * np.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


@dataclass
class FbankConfig:
    """Options of the filterbank; defaults are Kaldi's, with 40 mel bins."""

    num_mel_bins: int = field(default=40, metadata={"help": "Number of triangular mel filters (feature dimension)."})
    frame_length_ms: float = field(default=25.0, metadata={"help": "Window length in milliseconds."})
    frame_shift_ms: float = field(default=10.0, metadata={"help": "Frame shift in milliseconds."})
    low_freq: float = field(default=20.0, metadata={"help": "Low cut-off of the mel filters (Hz)."})
    high_freq: float = field(
        default=0.0, metadata={"help": "High cut-off (Hz); <= 0 means an offset from the Nyquist frequency."}
    )
    preemph_coeff: float = field(default=0.97, metadata={"help": "Pre-emphasis coefficient."})
    remove_dc_offset: bool = field(default=True, metadata={"help": "Subtract each frame's mean."})
    dither: float = field(
        default=1.0, metadata={"help": "Dither standard deviation in 16-bit units (0 disables); seeded per utterance."}
    )
    window_type: str = field(
        default="povey",
        metadata={"help": "Window function.", "choices": ["povey", "hamming", "hanning", "rectangular"]},
    )
    snip_edges: bool = field(default=True, metadata={"help": "Only whole frames (Kaldi's default)."})
    round_to_power_of_two: bool = field(default=True, metadata={"help": "Zero-pad each frame to a power of two."})

    def frame_length(self, sampling_rate: int) -> int:
        return int(sampling_rate * 0.001 * self.frame_length_ms)

    def frame_shift(self, sampling_rate: int) -> int:
        return int(sampling_rate * 0.001 * self.frame_shift_ms)

    def num_frames(self, num_samples: int, sampling_rate: int) -> int:
        """Frames Kaldi produces for ``num_samples`` samples."""
        length, shift = self.frame_length(sampling_rate), self.frame_shift(sampling_rate)
        if self.snip_edges:
            return 0 if num_samples < length else 1 + (num_samples - length) // shift
        return (num_samples + shift // 2) // shift


def utterance_seed(utterance_id: str) -> int:
    """A stable 32-bit seed from an utterance id (for reproducible dither)."""
    return zlib.crc32(utterance_id.encode("utf-8"))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # cached: shared by every caller
    return a


@lru_cache(maxsize=16)
def _window(window_type: str, length: int) -> np.ndarray:
    """The analysis window, float32 ``(length,)`` (computed in float64)."""
    n = np.arange(length, dtype=np.float64)
    a = 2 * math.pi / (length - 1)
    if window_type == "povey":
        w = (0.5 - 0.5 * np.cos(a * n)) ** 0.85
    elif window_type == "hamming":
        w = 0.54 - 0.46 * np.cos(a * n)
    elif window_type == "hanning":
        w = 0.5 - 0.5 * np.cos(a * n)
    elif window_type == "rectangular":
        w = np.ones(length, dtype=np.float64)
    else:
        raise ValueError(f"unknown window type {window_type!r}")
    return _readonly(w.astype(np.float32))


@lru_cache(maxsize=16)
def mel_filterbank(num_bins: int, padded_length: int, sampling_rate: int, low_freq: float, high_freq: float) -> np.ndarray:
    """Kaldi's triangular mel filters as a float32 ``(padded_length // 2 + 1, num_bins)`` matrix.

    The last row (the Nyquist bin) is zero, as in Kaldi.
    """
    nyquist = 0.5 * sampling_rate
    if high_freq <= 0.0:
        high_freq = nyquist + high_freq
    if not (0.0 <= low_freq < high_freq <= nyquist):
        raise ValueError(f"bad mel range: low_freq={low_freq}, high_freq={high_freq}, nyquist={nyquist}")
    num_fft_bins = padded_length // 2
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = np.arange(num_bins, dtype=np.float64)[None, :]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = mel_scale(np.arange(num_fft_bins, dtype=np.float64) * (sampling_rate / padded_length))[:, None]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.where(mel <= center, up, down)
    weights = np.where((mel > left) & (mel < right), weights, 0.0)
    empty = np.flatnonzero(weights.sum(0) == 0).tolist()
    if empty:
        raise ValueError(
            f"mel bins {empty} are empty: num_mel_bins={num_bins} is too large for "
            f"{sampling_rate} Hz audio with {padded_length}-point FFTs"
        )
    return _readonly(np.concatenate([weights, np.zeros((1, num_bins))]).astype(np.float32))


class Fbank:
    """Log-mel filterbank extractor (Kaldi-compatible).

    Args:
        config: :class:`FbankConfig`.
        device: where to compute (``"cpu"`` or ``"cuda"``; torch backend).
        backend: ``"torch"`` (default; training features) or ``"numpy"`` (no torch; dither must be 0).

    Shape:
        ``extract(samples)``: ``(N,)`` samples -> ``(T, num_mel_bins)`` float32 features,
        ``T = config.num_frames(N, sampling_rate)``.

    Example::

        >>> fb = Fbank(FbankConfig(num_mel_bins=40, dither=0.0))
        >>> x = np.random.default_rng(0).normal(0, 1000, 8000).astype(np.float32)
        >>> fb.extract(x, sampling_rate=8000, scale_to_int16=False).shape
        (98, 40)
    """

    def __init__(self, config: Optional[FbankConfig] = None, device: Union[str, "torch.device"] = "cpu",
                 backend: str = "torch"):
        self.config = config or FbankConfig()
        if backend not in BACKENDS:
            raise ValueError(f"Fbank backend must be one of {list(BACKENDS)}, got {backend!r}")
        if backend == "numpy" and self.config.dither != 0.0:
            raise ValueError("the numpy Fbank backend has no dither: set dither to 0 (deployment does)")
        self.backend = backend
        self.device = device

    @property
    def dim(self) -> int:
        return self.config.num_mel_bins

    def _frame_index(self, n: int, sampling_rate: int) -> np.ndarray:
        """``(T, frame length)`` sample indices of every frame (Kaldi's reflection at the edges when
        ``snip_edges`` is off, repeatedly for very short signals)."""
        c = self.config
        length, shift = c.frame_length(sampling_rate), c.frame_shift(sampling_rate)
        num_frames = c.num_frames(n, sampling_rate)
        start = np.arange(num_frames, dtype=np.int64) * shift - (0 if c.snip_edges else (length - shift) // 2)
        idx = start[:, None] + np.arange(length, dtype=np.int64)[None, :]
        if not c.snip_edges:
            period = 2 * n
            idx = np.remainder(idx, period)
            idx = np.where(idx >= n, period - 1 - idx, idx)
        return idx

    def _frames(self, x: "torch.Tensor", sampling_rate: int) -> "torch.Tensor":
        import torch

        c = self.config
        length, shift = c.frame_length(sampling_rate), c.frame_shift(sampling_rate)
        num_frames = c.num_frames(x.shape[0], sampling_rate)
        if num_frames == 0:
            return x.new_zeros(0, length)
        if c.snip_edges:
            return x.unfold(0, length, shift)[:num_frames]
        return x[torch.from_numpy(self._frame_index(x.shape[0], sampling_rate)).to(x.device)]

    def extract(
        self,
        samples: Union[np.ndarray, torch.Tensor],
        sampling_rate: int,
        seed: Optional[int] = None,
        scale_to_int16: Optional[bool] = None,
    ) -> np.ndarray:
        """Features of one utterance as a float32 numpy array ``(T, num_mel_bins)``.

        Args:
            samples: mono samples ``(N,)`` (a ``(1, N)`` array is accepted too).
            sampling_rate: in Hz.
            seed: seed of the dither noise (ignored when ``dither == 0``).
            scale_to_int16: multiply by 32768 first; default: True for float input,
                False for integer input.
        """
        if self.backend == "numpy":
            return self.extract_numpy(samples, sampling_rate, scale_to_int16)
        return self.extract_torch(samples, sampling_rate, seed, scale_to_int16).cpu().numpy()

    def extract_numpy(self, samples: np.ndarray, sampling_rate: int, scale_to_int16: Optional[bool] = None) -> np.ndarray:
        """As :meth:`extract`, in numpy (float32 steps as the torch backend; no dither)."""
        c = self.config
        if c.dither != 0.0:
            raise ValueError("extract_numpy has no dither: set dither to 0")
        x = np.asarray(samples)
        is_float = np.issubdtype(x.dtype, np.floating)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise ValueError(f"expected mono samples of shape (N,), got {tuple(x.shape)}")
        if scale_to_int16 is None:
            scale_to_int16 = is_float
        if scale_to_int16:
            x = x * np.float32(32768.0)
        length = c.frame_length(sampling_rate)
        if c.num_frames(x.shape[0], sampling_rate) == 0:
            return np.zeros((0, c.num_mel_bins), np.float32)
        frames = x[self._frame_index(x.shape[0], sampling_rate)]
        if c.remove_dc_offset:
            frames = frames - frames.mean(axis=1, keepdims=True, dtype=np.float32)
        if c.preemph_coeff != 0.0:
            k = np.float32(c.preemph_coeff)
            frames = np.concatenate([frames[:, :1] * (np.float32(1.0) - k), frames[:, 1:] - k * frames[:, :-1]], axis=1)
        frames = frames * _window(c.window_type, length)
        padded = 1 << (length - 1).bit_length() if c.round_to_power_of_two else length
        spectrum = np.fft.rfft(frames, n=padded)
        power = (spectrum.real.astype(np.float32) ** 2 + spectrum.imag.astype(np.float32) ** 2)
        banks = mel_filterbank(c.num_mel_bins, padded, sampling_rate, c.low_freq, c.high_freq)
        return np.log(np.maximum(power @ banks, np.float32(FLT_EPSILON)))

    def extract_torch(self, samples, sampling_rate: int, seed: Optional[int] = None, scale_to_int16=None) -> "torch.Tensor":
        import torch

        c = self.config
        if isinstance(samples, np.ndarray):
            is_float = np.issubdtype(samples.dtype, np.floating)
            x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        else:
            is_float = samples.is_floating_point()
            x = samples.float()
        if x.dim() == 2 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 1:
            raise ValueError(f"expected mono samples of shape (N,), got {tuple(x.shape)}")
        if scale_to_int16 is None:
            scale_to_int16 = is_float
        x = x.to(self.device)
        if scale_to_int16:
            x = x * 32768.0
        length = c.frame_length(sampling_rate)
        frames = self._frames(x, sampling_rate)
        if frames.shape[0] == 0:
            return torch.zeros(0, c.num_mel_bins, device=self.device)
        if c.dither != 0.0:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(0 if seed is None else int(seed))
            frames = frames + c.dither * torch.randn(frames.shape, generator=gen, device=self.device)
        if c.remove_dc_offset:
            frames = frames - frames.mean(dim=1, keepdim=True)
        if c.preemph_coeff != 0.0:
            frames = torch.cat(
                [frames[:, :1] * (1.0 - c.preemph_coeff), frames[:, 1:] - c.preemph_coeff * frames[:, :-1]], dim=1
            )
        frames = frames * torch.from_numpy(_window(c.window_type, length).copy()).to(self.device)
        padded = 1 << (length - 1).bit_length() if c.round_to_power_of_two else length
        spectrum = torch.fft.rfft(frames, n=padded)
        power = spectrum.real.square() + spectrum.imag.square()
        banks = torch.from_numpy(mel_filterbank(c.num_mel_bins, padded, sampling_rate, c.low_freq, c.high_freq).copy()).to(self.device)
        return torch.log(torch.clamp(power @ banks, min=FLT_EPSILON))
