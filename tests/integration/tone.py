"""Test tones: sine samples, G.711 (mu-law and A-law) and the dominant frequency of a signal.

The media peers of the integration tests prove that audio crossed the gateway intact by
sending a sine tone one way and measuring the frequency that arrives on the other side.
Everything here is pure Python on lists of signed 16-bit samples: no I/O, no clock, no
numpy. G.711 follows ITU-T G.711 (segmented companding of 14-bit mu-law and 13-bit A-law
magnitudes; the 16-bit samples here are scaled accordingly). The frequency estimate is a
Hann-windowed radix-2 FFT peak refined by Gaussian interpolation, good to a fraction of a
hertz for a clean tone; it does not separate chords or find pitch in speech.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Iterable, Sequence

__all__ = [
    "ToneError",
    "alaw_decode",
    "alaw_encode",
    "decode_pcma",
    "decode_pcmu",
    "dominant_frequency",
    "encode_pcma",
    "encode_pcmu",
    "rms",
    "sine_samples",
    "ulaw_decode",
    "ulaw_encode",
]

#: mu-law adds this bias to the magnitude so every segment starts on a power of two.
_ULAW_BIAS = 0x84
#: The largest magnitude mu-law can code once biased (0x7FFF - 0x84).
_ULAW_CLIP = 32635
#: A-law inverts every other bit of the code word (ITU-T G.711 table 1a).
_ALAW_XOR = 0x55
#: At most this many samples enter one FFT: 0.5 s at 16 kHz, about 30 ms of CPU.
_MAX_FFT = 8192


class ToneError(ValueError):
    """A signal in which no tone can be measured (too short, or silent)."""


def sine_samples(
    hz: float, rate: int, count: int, *, amplitude: float = 0.5, start: int = 0
) -> list[int]:
    """``count`` signed 16-bit samples of a sine at ``hz``, from sample index ``start``.

    ``amplitude`` is a fraction of full scale; ``start`` keeps the phase continuous when a
    tone is produced frame by frame.
    """
    if not 0.0 < amplitude <= 1.0:
        raise ToneError(f"sine amplitude {amplitude} is not in (0, 1]")
    peak = amplitude * 32767
    step = 2 * math.pi * hz / rate
    return [round(peak * math.sin(step * n)) for n in range(start, start + count)]


def ulaw_encode(sample: int) -> int:
    """One signed 16-bit sample as a mu-law code byte."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _ULAW_CLIP) + _ULAW_BIAS
    # The biased magnitude has its top bit between bit 7 (segment 0) and bit 14 (segment 7).
    segment = magnitude.bit_length() - 8
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    # Code words are transmitted inverted (G.711: "all bits inverted").
    return ~(sign | (segment << 4) | mantissa) & 0xFF


def ulaw_decode(code: int) -> int:
    """One mu-law code byte as a signed 16-bit sample."""
    code = ~code & 0xFF
    segment = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + _ULAW_BIAS) << segment) - _ULAW_BIAS
    return -magnitude if code & 0x80 else magnitude


def alaw_encode(sample: int) -> int:
    """One signed 16-bit sample as an A-law code byte."""
    if sample >= 0:
        sign = 0x80
        magnitude = sample >> 3
    else:
        # One's complement on the 13-bit value: -1..-8 share the code of 0..7.
        sign = 0
        magnitude = -(sample >> 3) - 1
    magnitude = min(magnitude, 0x0FFF)
    segment = max(magnitude.bit_length() - 5, 0)
    # Segments 0 and 1 both step by 2; segment s >= 1 steps by 2**s.
    mantissa = (magnitude >> max(segment, 1)) & 0x0F
    return (sign | (segment << 4) | mantissa) ^ _ALAW_XOR


def alaw_decode(code: int) -> int:
    """One A-law code byte as a signed 16-bit sample (the middle of its interval)."""
    code ^= _ALAW_XOR
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    if segment == 0:
        magnitude = (mantissa << 1) + 1
    else:
        magnitude = ((mantissa << 1) + 33) << (segment - 1)
    linear = magnitude << 3
    return linear if code & 0x80 else -linear


_ULAW_TABLE = tuple(ulaw_decode(code) for code in range(256))
_ALAW_TABLE = tuple(alaw_decode(code) for code in range(256))


def encode_pcmu(samples: Iterable[int]) -> bytes:
    """Signed 16-bit samples as a PCMU (payload type 0) payload."""
    return bytes(ulaw_encode(sample) for sample in samples)


def decode_pcmu(payload: bytes) -> list[int]:
    """A PCMU payload as signed 16-bit samples."""
    return [_ULAW_TABLE[code] for code in payload]


def encode_pcma(samples: Iterable[int]) -> bytes:
    """Signed 16-bit samples as a PCMA (payload type 8) payload."""
    return bytes(alaw_encode(sample) for sample in samples)


def decode_pcma(payload: bytes) -> list[int]:
    """A PCMA payload as signed 16-bit samples."""
    return [_ALAW_TABLE[code] for code in payload]


def rms(samples: Sequence[int]) -> float:
    """Root mean square of the samples, in 16-bit sample units (0.0 for no samples)."""
    if not samples:
        return 0.0
    return math.sqrt(math.fsum(float(s) * s for s in samples) / len(samples))


def dominant_frequency(samples: Sequence[int], rate: int) -> float:
    """The frequency in Hz of the strongest tone in ``samples`` taken at ``rate`` Hz.

    Leading and trailing near-silence (below a tenth of the peak) is ignored, then at most
    the last 8192 samples are analysed.

    Raises:
        ToneError: fewer than 64 samples carry signal, or the signal is all silence.
    """
    peak = max((abs(s) for s in samples), default=0)
    if peak == 0:
        raise ToneError(f"no tone in {len(samples)} samples: all silence")
    loud = [i for i, s in enumerate(samples) if abs(s) >= peak / 10]
    signal = samples[loud[0] : loud[-1] + 1][-_MAX_FFT:]
    if len(signal) < 64:
        raise ToneError(f"no tone: only {len(signal)} samples carry signal, 64 needed")
    mean = math.fsum(signal) / len(signal)
    count = len(signal)
    # A Hann window keeps the leakage of a tone that is not on a bin centre away from
    # the neighbouring bins, so the peak and its two neighbours describe it alone.
    windowed = [
        complex((s - mean) * (0.5 - 0.5 * math.cos(2 * math.pi * n / (count - 1))))
        for n, s in enumerate(signal)
    ]
    size = 1 << (count - 1).bit_length()
    # Zero padding to twice the next power of two halves the bin width for free.
    size *= 2
    windowed.extend([0j] * (size - count))
    spectrum = _fft(windowed)
    magnitudes = [abs(value) for value in spectrum[: size // 2]]
    bin_ = max(range(1, size // 2 - 1), key=magnitudes.__getitem__)
    if magnitudes[bin_] == 0.0:
        raise ToneError(f"no tone in {count} samples: flat spectrum")
    return (bin_ + _interpolate(magnitudes, bin_)) * rate / size


def _interpolate(magnitudes: Sequence[float], bin_: int) -> float:
    """Offset of the true peak from ``bin_`` (-0.5..0.5), from a parabola through the
    logarithms of the three magnitudes around it (exact for a Gaussian peak)."""
    floor = 1e-12
    left, centre, right = (math.log(max(m, floor)) for m in magnitudes[bin_ - 1 : bin_ + 2])
    denominator = left - 2 * centre + right
    if denominator == 0.0:
        return 0.0
    return max(-0.5, min(0.5, 0.5 * (left - right) / denominator))


def _fft(values: list[complex]) -> list[complex]:
    """Iterative radix-2 decimation-in-time FFT; ``len(values)`` is a power of two."""
    size = len(values)
    bits = size.bit_length() - 1
    if size & (size - 1):
        raise ToneError(f"FFT size {size} is not a power of two")
    # Bit-reversed order first, then butterflies of growing span.
    result = [values[int(format(i, f"0{bits}b")[::-1], 2)] for i in range(size)]
    span = 1
    while span < size:
        twiddle = cmath.exp(-1j * math.pi / span)
        factors = [twiddle**k for k in range(span)]
        for start in range(0, size, 2 * span):
            for k in range(span):
                even = result[start + k]
                odd = result[start + k + span] * factors[k]
                result[start + k] = even + odd
                result[start + k + span] = even - odd
        span *= 2
    return result
