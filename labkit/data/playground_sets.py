"""The TensorFlow Playground's 2-D datasets (circle, xor, gauss, spiral), generated as its
``src/dataset.ts`` does.

Labels are the Playground's −1 (orange) and +1 (blue), returned as classes 0 and 1.
"""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.data.base import SPLIT_SEED, Data, DatasetSpec, split
from labkit.errors import LabkitError

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

NUM_SAMPLES = 500  # the Playground's classification sets
RADIUS = 5.0


def circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Half the points inside radius 2.5, half in the ring 3.5–5; label: inside the noised 2.5."""
    def ring(k, r_min, r_max):
        r = rng.uniform(r_min, r_max, k)
        angle = rng.uniform(0, 2 * np.pi, k)
        return np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)

    points = np.concatenate([ring(n // 2, 0, RADIUS * 0.5), ring(n - n // 2, RADIUS * 0.7, RADIUS)])
    jitter = rng.uniform(-RADIUS, RADIUS, points.shape) * noise
    labels = np.linalg.norm(points + jitter, axis=1) < RADIUS * 0.5
    return points, labels


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points pushed 0.3 away from the axes; label: the noised x·y >= 0."""
    points = rng.uniform(-5, 5, (n, 2))
    points += np.where(points > 0, 0.3, -0.3)
    jitter = rng.uniform(-5, 5, points.shape) * noise
    noised = points + jitter
    return points, noised[:, 0] * noised[:, 1] >= 0


def gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussians at (2, 2) (+1) and (−2, −2) (−1); variance 0.5 → 4 as noise 0 → 0.5."""
    variance = 0.5 + (4 - 0.5) * noise / 0.5
    half = n // 2
    centers = np.repeat([[2.0, 2.0], [-2.0, -2.0]], [half, n - half], axis=0)
    points = centers + rng.normal(0, np.sqrt(variance), (n, 2))
    return points, np.arange(n) < half


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals, r = 5i/m, t = 1.75·2π·i/m + δ, δ = 0 (+1) or π (−1)."""
    m = n // 2
    i = np.arange(m)
    arms = []
    for delta in (0.0, np.pi):
        r = i / m * RADIUS
        t = 1.75 * i / m * 2 * np.pi + delta
        arm = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        arms.append(arm + rng.uniform(-1, 1, arm.shape) * noise)
    return np.concatenate(arms), np.arange(2 * m) < m


GENERATORS = {"circle": circle, "xor": xor, "gauss": gauss, "spiral": spiral}


def generate(name: str, *, noise: float = 0.0, num_samples: int = NUM_SAMPLES,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(n, 2)`` float32 and labels ``(n,)`` in {0, 1}, shuffled as the Playground does."""
    rng = np.random.default_rng(seed)
    points, positive = GENERATORS[name](num_samples, noise, rng)
    order = rng.permutation(len(points))
    return points[order].astype("float32"), positive[order].astype("int64")


def load(name: str, validation_split: float, *, noise: float = 0.0,
         num_samples: int = NUM_SAMPLES, seed: int = SPLIT_SEED) -> Data:
    """Playground set ``name``: the first half of the shuffled points for training (the
    Playground's default ratio), the second half for test; validation carved from training."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 0.5:
        raise LabkitError(f"Dataset option `noise` must be in [0, 0.5]. Received: noise={noise}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 20:
        raise LabkitError(f"Dataset option `num_samples` must be an integer >= 20. "
                          f"Received: num_samples={num_samples}")
    x, y = generate(name, noise=noise, num_samples=num_samples, seed=seed)
    half = len(x) // 2
    train, val = split(x[:half], y[:half], validation_split)
    spec = DatasetSpec(name, (2,), 2, class_names=("orange (-1)", "blue (+1)"))
    return Data(spec, train, val, (x[half:], y[half:]))
