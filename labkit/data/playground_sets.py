"""The TensorFlow Playground's 2-D datasets, generated as its ``src/dataset.ts`` does: the
classification sets circle, xor, gauss and spiral (500 points) and the regression sets plane and
multi-gauss (1 200 points).

Classification labels are the Playground's −1 (orange) and +1 (blue), returned as classes 0 and
1; regression targets are its values (plane: (x1 + x2) / 10, so within ±1.2).
"""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.data.base import SPLIT_SEED, Data, DatasetSpec, split
from labkit.errors import LabkitError

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

NUM_SAMPLES = 500  # the Playground's classification sets
NUM_SAMPLES_REGRESSION = 1200  # and its regression sets
RADIUS = 5.0
RATIO = 50  # the Playground's default percentage of training points
# The six Gaussians of multi-gauss: centre (x, y) and sign of their target.
GAUSSIANS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


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


def _noised_uniform(n: int, noise: float, rng: np.random.Generator, radius: float = 6.0):
    """The regression sets' points, uniform on [−6, 6]², and the same points jittered by
    U(−6, 6)·noise per coordinate, where their targets are read."""
    points = rng.uniform(-radius, radius, (n, 2))
    return points, points + rng.uniform(-radius, radius, (n, 2)) * noise


def plane(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regression: target (x + y) / 10 (the Playground's [−10, 10] → [−1, 1]), read at the
    noised point."""
    points, noised = _noised_uniform(n, noise, rng)
    return points, noised.sum(axis=1) / 10


def multi_gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regression: six signed bumps; the target is the bump of largest magnitude, each falling
    linearly from ±1 at its centre to 0 at distance 2."""
    points, noised = _noised_uniform(n, noise, rng)
    bumps = np.stack([sign * np.clip(1 - np.hypot(noised[:, 0] - cx, noised[:, 1] - cy) / 2, 0, 1)
                      for cx, cy, sign in GAUSSIANS], axis=1)
    return points, bumps[np.arange(n), np.abs(bumps).argmax(axis=1)]


GENERATORS = {"circle": circle, "xor": xor, "gauss": gauss, "spiral": spiral}
REGRESSION = {"plane": plane, "multi-gauss": multi_gauss}


def generate(name: str, *, noise: float = 0.0, num_samples: int | None = None,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(n, 2)`` float32 and, shuffled as the Playground does, labels ``(n,)`` in
    {0, 1} (int64) for a classification set or targets ``(n, 1)`` within ±1.2 (float32) for a
    regression set. ``num_samples`` defaults to the Playground's (500 or 1 200)."""
    rng = np.random.default_rng(seed)
    if name in REGRESSION:
        points, targets = REGRESSION[name](num_samples or NUM_SAMPLES_REGRESSION, noise, rng)
        order = rng.permutation(len(points))
        return points[order].astype("float32"), targets[order, None].astype("float32")
    points, positive = GENERATORS[name](num_samples or NUM_SAMPLES, noise, rng)
    order = rng.permutation(len(points))
    return points[order].astype("float32"), positive[order].astype("int64")


def check_options(noise=0.0, num_samples=None, ratio=RATIO) -> None:
    """Raise a :class:`LabkitError` naming the first option out of the Playground's range."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 0.5:
        raise LabkitError(f"Dataset option `noise` must be in [0, 0.5]. Received: noise={noise}")
    if num_samples is not None and (isinstance(num_samples, bool)
                                    or not isinstance(num_samples, int) or num_samples < 20):
        raise LabkitError(f"Dataset option `num_samples` must be an integer >= 20. "
                          f"Received: num_samples={num_samples}")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 10 <= ratio <= 90:
        raise LabkitError(f"Dataset option `ratio` (percent of points for training) must be in "
                          f"[10, 90]. Received: ratio={ratio}")


def train_count(n: int, ratio: float = RATIO) -> int:
    """How many of ``n`` shuffled points train: the Playground's ⌊n · ratio / 100⌋."""
    return int(n * ratio // 100)


def load(name: str, validation_split: float, *, noise: float = 0.0,
         num_samples: int | None = None, seed: int = SPLIT_SEED, ratio: float = RATIO) -> Data:
    """Playground set ``name``: the first ``ratio`` percent of the shuffled points for training
    (the Playground's default: half), the rest for test; validation carved from training."""
    check_options(noise, num_samples, ratio)
    x, y = generate(name, noise=noise, num_samples=num_samples, seed=seed)
    cut = train_count(len(x), ratio)
    train, val = split(x[:cut], y[:cut], validation_split, stratify=name not in REGRESSION)
    if name in REGRESSION:
        spec = DatasetSpec(name, (2,), 1, task="regression")
    else:
        spec = DatasetSpec(name, (2,), 2, class_names=("orange (-1)", "blue (+1)"))
    return Data(spec, train, val, (x[cut:], y[cut:]))
