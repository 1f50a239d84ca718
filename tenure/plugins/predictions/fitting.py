"""The buy-till-you-die models, vectorised over customers with numpy and scipy.

- **BG/NBD** (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while
  active, a customer makes purchase occasions as a Poisson process whose rate varies across
  customers as Gamma(r, alpha); after each occasion they drop out with a probability that
  varies as Beta(a, b). A customer is summarised by ``x`` (repeat occasions), ``t_x`` (time
  of the last occasion since the first) and ``T`` (time since the first occasion).
- **Gamma-Gamma** (Fader, Hardie and Lee 2005b, "RFM and CLV"; Colombo and Jiang 1999): the
  value of a customer's occasions varies around their own mean, which varies across customers;
  ``p``, ``q`` and ``v`` shape both. It is fitted on repeat buyers, summarised by ``x`` and the
  mean value ``m`` of their repeat occasions, and assumes value independent of frequency.

Times are in weeks, the unit of the published parameters. Parameters are fitted by maximum
likelihood (``scipy.optimize.minimize``, L-BFGS-B on their logarithms, analytic gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

Array = NDArray[np.float64]


class FitError(ValueError):
    """The optimiser did not find the maximum; the message says what happened."""


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float

    @property
    def population_mean(self) -> float:
        """The mean value of an occasion across customers, p v / (q - 1) (infinite for q <= 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


def _by_value(x: Array) -> tuple[Array, NDArray[np.intp]]:
    """The distinct values of ``x`` and, per customer, which one is theirs: terms that depend
    on ``x`` alone are computed once per distinct count."""
    values, inverse = np.unique(x, return_inverse=True)
    return values.astype(np.float64), inverse


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, t: Array,
                         groups: tuple[Array, NDArray[np.intp]] | None = None) -> tuple[float, Array]:
    """The BG/NBD log-likelihood of ``params`` = log(r, alpha, a, b) and its gradient in those
    logarithms (FHL 2005, equation 6). ``groups``: ``_by_value(x)``, when the caller kept it."""
    r, alpha, a, b = np.exp(params)
    xs, which = groups if groups is not None else _by_value(x)
    repeat = x > 0
    a1 = (gammaln(r + xs) - gammaln(r))[which] + r * np.log(alpha)
    a2 = (betaln(a, b + xs) - betaln(a, b))[which]
    log_at = np.log(alpha + t)
    log_atx = np.log(alpha + t_x)
    a3 = -(r + x) * log_at
    bx1 = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * log_atx, -np.inf)
    tail = np.logaddexp(a3, a4)
    ll = float(np.sum(a1 + a2 + tail))
    w3 = np.exp(a3 - tail)
    w4 = np.exp(a4 - tail)
    d_r = (digamma(r + xs) - digamma(r))[which] + np.log(alpha) - w3 * log_at - w4 * log_atx
    d_alpha = r / alpha - w3 * (r + x) / (alpha + t) - w4 * (r + x) / (alpha + t_x)
    d_a = (digamma(a + b) - digamma(a + b + xs))[which] + w4 / a
    d_b = (digamma(a + b) + digamma(b + xs) - digamma(b) - digamma(a + b + xs))[which] - w4 / bx1
    grad = np.array([np.sum(d) for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
    return ll, grad


def fit_bgnbd(x: Array, t_x: Array, t: Array, near: BgNbd | None = None) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for customers summarised by ``x``, ``t_x``, ``T``;
    the search starts from ``near`` when given (a fit of similar data)."""
    n = len(x)
    start = np.log([1.0, max(float(np.mean(t)), 1e-3), 1.0, 1.0] if near is None
                   else [near.r, near.alpha, near.a, near.b])

    groups = _by_value(x)

    def objective(params: Array) -> tuple[float, Array]:
        ll, grad = bgnbd_log_likelihood(params, x, t_x, t, groups)
        return -ll / n, -grad / n

    found = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(-15.0, 15.0)] * 4,
                     options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    if not np.all(np.isfinite(found.x)) or not np.isfinite(found.fun):
        raise FitError(f"the BG/NBD fit did not converge ({found.message})")
    r, alpha, a, b = np.exp(found.x)
    return BgNbd(float(r), float(alpha), float(a), float(b), float(-found.fun * n))


def gamma_gamma_log_likelihood(params: Array, x: Array, m: Array) -> tuple[float, Array]:
    """The Gamma-Gamma log-likelihood of ``params`` = log(p, q, v) for repeat buyers with
    ``x`` repeat occasions of mean value ``m``, and its gradient in those logarithms."""
    p, q, v = np.exp(params)
    px = p * x
    log_xmv = np.log(x * m + v)
    ll = np.sum(gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m)
                + px * np.log(x) - (px + q) * log_xmv)
    d_p = np.sum(x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_xmv))
    d_q = np.sum(digamma(px + q) - digamma(q) + np.log(v) - log_xmv)
    d_v = np.sum(q / v - (px + q) / (x * m + v))
    return float(ll), np.array([d_p * p, d_q * q, d_v * v])


def fit_gamma_gamma(x: Array, m: Array, near: GammaGamma | None = None) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters; ``x`` >= 1 and ``m`` > 0 for every customer."""
    n = len(x)
    start = np.log([1.0, 1.0, max(float(np.mean(m)), 1e-3)] if near is None else [near.p, near.q, near.v])

    def objective(params: Array) -> tuple[float, Array]:
        ll, grad = gamma_gamma_log_likelihood(params, x, m)
        return -ll / n, -grad / n

    found = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(-15.0, 25.0)] * 3,
                     options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    if not np.all(np.isfinite(found.x)) or not np.isfinite(found.fun):
        raise FitError(f"the Gamma-Gamma fit did not converge ({found.message})")
    p, q, v = np.exp(found.x)
    return GammaGamma(float(p), float(q), float(v), float(-found.fun * n))


def probability_active(model: BgNbd, x: Array, t_x: Array, t: Array) -> Array:
    """P(still active | x, t_x, T) (FHL 2005, equation 11): 1 for a customer with no repeat
    occasion, by the model's assumption that dropping out happens only after a purchase."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    repeat = x > 0
    bx1 = np.where(repeat, b + x - 1, 1.0)
    odds = np.where(repeat, a / bx1 * np.exp((r + x) * (np.log(alpha + t) - np.log(alpha + t_x))), 0.0)
    return np.asarray(1.0 / (1.0 + odds))


def expected_occasions(model: BgNbd, x: Array, t_x: Array, t: Array, horizon: Array | float) -> Array:
    """E[Y(horizon) | x, t_x, T]: purchase occasions expected in the next ``horizon`` weeks
    (FHL 2005, equation 10)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    horizon = np.asarray(horizon, dtype=np.float64)
    z = horizon / (alpha + t + horizon)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1) * (1 - np.exp((r + x) * (np.log(alpha + t) - np.log(alpha + t + horizon))) * hyp)
    return np.asarray(head * probability_active(model, x, t_x, t))


def unconditional_occasions(model: BgNbd, horizon: float) -> float:
    """E[X(t)]: occasions expected of a new customer in their first ``horizon`` weeks (FHL 2005, eq. 7)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = horizon / (alpha + horizon)
    return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + horizon)) ** r * hyp2f1(r, b, a + b - 1, z)))


def expected_value(model: GammaGamma, x: Array, m: Array) -> Array:
    """E[value of an occasion | x, m] (FHL 2005b, equation 5): a weighted mean of the
    population mean and the customer's own mean, the weight on their own growing with ``x``.
    A customer with no repeat occasion gets the population mean."""
    p, q, v = model.p, model.q, model.v
    own = np.where(x > 0, m, 0.0)
    return np.asarray(p * (v + x * own) / (p * x + q - 1))


def discounted_occasions(model: BgNbd, x: Array, t_x: Array, t: Array, horizon_weeks: float,
                         yearly_rate: float, step_weeks: float) -> Array:
    """Occasions expected over ``horizon_weeks``, each step's share discounted to today at
    ``yearly_rate`` (compounded yearly, taken at the end of each step)."""
    steps = max(1, int(np.ceil(horizon_weeks / step_weeks)))
    edges = np.minimum(np.arange(1, steps + 1) * step_weeks, horizon_weeks)
    total = np.zeros_like(x)
    before = np.zeros_like(x)
    for edge in edges:
        upto = expected_occasions(model, x, t_x, t, edge)
        total += (upto - before) / (1 + yearly_rate) ** (edge / 52.1775)
        before = upto
    return total
