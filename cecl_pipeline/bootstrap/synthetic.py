"""A seeded synthetic macro history and NCO panel: the project's default data when a user brings none.

Levels are calibrated by eye to the Fed's historic domestic table and its charge-off rates by segment:
cards near 3-5 % in good years and 10-15 % in a 2008-like stress, real estate near 0.1 % rising to 2-3 %,
C&I 0.3-2.5 %. Stress episodes are pinned to calendar quarters (2001, 2008-09, 2020) so every seed has
the shape that forecasts and baselines are judged on; the seed moves everything else. All arithmetic is
vectorised over (quarter, bank, segment) arrays, laid out so that flattening them gives the sorted panel.
Loan amounts are in thousands of dollars, as in the Call Report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cecl_pipeline.panel.schema import KEY_COLUMNS, MACRO_COLUMNS, MACRO_QUARTER, OPTIONAL_AMOUNT_COLUMNS, RATE_COLUMN
from cecl_pipeline.quarters import QuarterError, label, labels_from_ordinals, ordinals, to_ordinal

DEFAULT_SEGMENTS = ("credit_card", "commercial_real_estate", "residential_mortgage", "commercial_industrial")
DEFAULT_FIRST, DEFAULT_LAST = "2000Q1", "2024Q4"

# Separate random streams per seed, so that changing the panel's draws never changes the macro path.
_MACRO_STREAM, _PANEL_STREAM = 0, 1

_U_REF = 4.4  # unemployment of a benign quarter: loss rates sit at their base level there
_NORMAL_SPREAD = 1.6  # BBB over 10y Treasury in calm markets, percentage points
_HISTORY = 24  # quarters of macro before `first` the loss drivers look back over (6-year price highs)

# Unemployment bumps (start, peak, rise in pp, decay time in quarters): smooth rise, exponential fall.
_UNEMPLOYMENT_EPISODES = (
    ("1980Q1", "1982Q4", 4.0, 10.0),
    ("1990Q2", "1992Q2", 2.3, 8.0),
    ("2001Q1", "2003Q2", 1.8, 6.0),
    ("2007Q4", "2009Q4", 5.4, 14.0),  # the 2008-like stress: about +5pp, then a slow decline
    ("2020Q1", "2020Q2", 4.0, 2.5),  # short and sharp; kept below the 2009 peak, as its losses were
)
_INFLATION_EPISODES = (("1977Q1", "1980Q2", 7.0, 10.0), ("2021Q1", "2022Q2", 4.5, 3.0))
# Extra quarterly log growth over windows (first, last, drift): the housing boom and bust, CRE slumps.
_HOUSE_DRIFTS = (
    ("1998Q1", "2006Q2", 0.016),
    ("2006Q3", "2009Q1", -0.042),  # the bust: fast at first, then a slow slide to 2011
    ("2009Q2", "2011Q4", -0.014),
    ("2020Q3", "2022Q2", 0.022),
)
_CRE_DRIFTS = (
    ("1989Q1", "1992Q4", -0.03),
    ("2004Q1", "2007Q3", 0.02),
    ("2007Q4", "2010Q1", -0.05),
    ("2010Q2", "2016Q4", 0.01),
    ("2023Q1", "2024Q4", -0.02),
)


@dataclass(frozen=True)
class SegmentProfile:
    """How one segment's loss rate responds to the economy; log-rate sensitivities."""

    base: float  # annualised percent at reference unemployment, calm prices and spreads
    unemployment: float  # per pp of lagged unemployment above _U_REF
    house_drawdown: float  # per unit drawdown of house prices from their 6-year high
    cre_drawdown: float  # per unit drawdown of CRE prices from their 6-year high
    spread: float  # per pp of BBB spread above normal
    seasonal: tuple[float, float, float, float]  # log factors for Q1..Q4 (mean zero)
    noise: float  # sd of log noise for a median-sized book; smaller books are noisier
    net_recovery_prob: float  # chance of a net-recovery quarter in benign times
    recovery_share: float  # mean recoveries / gross charge-offs
    loan_share: float  # mean share of a bank's loans


SEGMENT_PROFILES = {
    "credit_card": SegmentProfile(3.6, 0.22, 0.0, 0.0, 0.05, (0.07, 0.05, -0.05, -0.07), 0.10, 0.0, 0.12, 0.08),
    "commercial_real_estate": SegmentProfile(
        0.09, 0.28, 0.0, 5.0, 0.10, (-0.06, -0.04, -0.02, 0.12), 0.45, 0.035, 0.25, 0.35
    ),
    "residential_mortgage": SegmentProfile(
        0.10, 0.22, 6.5, 0.0, 0.0, (-0.02, -0.02, -0.01, 0.05), 0.35, 0.025, 0.18, 0.30
    ),
    "commercial_industrial": SegmentProfile(
        0.30, 0.28, 0.0, 0.0, 0.30, (-0.06, -0.03, -0.01, 0.10), 0.45, 0.015, 0.22, 0.27
    ),
}


def synthesize_macro(first: str = DEFAULT_FIRST, last: str = DEFAULT_LAST, seed: int = 0) -> pd.DataFrame:
    """One row per quarter: 'quarter' plus every MACRO_COLUMNS column (float64), sorted, no gaps, no NaN."""
    t = _ordinal_range(first, last)
    rng = np.random.default_rng((seed, _MACRO_STREAM))
    unemployment = np.maximum(_U_REF + _episodes(t, _UNEMPLOYMENT_EPISODES) + _ar1(rng.normal(0, 0.22, t.size), 0.95), 2.5)
    change = np.diff(unemployment, prepend=unemployment[0])
    cpi = 2.3 + _episodes(t, _INFLATION_EPISODES) - 1.5 * np.maximum(change, 0) + _ar1(rng.normal(0, 1.0, t.size), 0.5)
    vix = 15 * np.exp(_ar1(rng.normal(0, 0.2, t.size), 0.5)) + 40 * np.tanh(1.2 * np.maximum(change, 0))
    vix += 1.5 * np.maximum(unemployment - _U_REF - 0.5, 0)  # markets stay nervous while joblessness is high
    columns = {
        "unemployment_rate": unemployment,
        "cpi_inflation": cpi,
        "vix": vix,
        **_activity(change, cpi, rng),
        **_rates(t, unemployment, cpi, vix, rng),
        **_price_indices(t, change, vix, rng),
    }
    frame = pd.DataFrame({c: np.asarray(columns[c], dtype="float64") for c in MACRO_COLUMNS})
    frame.insert(0, MACRO_QUARTER, labels_from_ordinals(t).astype("str").to_numpy())
    return frame


def synthesize_panel(
    n_banks: int = 40,
    first: str = DEFAULT_FIRST,
    last: str = DEFAULT_LAST,
    seed: int = 0,
    segments: tuple[str, ...] = DEFAULT_SEGMENTS,
    macro: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long panel, one row per (entity_id, segment, quarter), sorted by quarter, entity_id, segment."""
    if n_banks < 1:
        raise ValueError(f"n_banks must be at least 1, got {n_banks}")
    t = _ordinal_range(first, last)
    names = sorted(set(segments))  # segment order inside a bank-quarter is the sort order
    unknown = [s for s in names if s not in SEGMENT_PROFILES]
    if unknown or not names:
        problem = f"unknown segments {unknown}" if unknown else "no segments given"
        raise ValueError(f"{problem}: choose from {', '.join(SEGMENT_PROFILES)}")
    profiles = [SEGMENT_PROFILES[s] for s in names]
    drivers = _drivers(synthesize_macro(first, last, seed) if macro is None else macro, t)
    rng = np.random.default_rng((seed, _PANEL_STREAM))
    loans, size_factor = _loans(rng, n_banks, profiles, drivers["loan_growth"])
    rates = _nco_rates(rng, t, drivers, profiles, size_factor)
    net = rates * loans / 400
    recoveries = _recoveries(rng, net, profiles)
    # Charge-offs are built from net + recoveries so that net == charge_offs - recoveries to float precision.
    amounts = {"charge_offs": net + recoveries, "recoveries": recoveries, "net_charge_offs": net, "loans": loans}
    return _frame(t, names, rates, amounts)


def _ordinal_range(first: str, last: str) -> np.ndarray:
    a, b = to_ordinal(first), to_ordinal(last)
    if b < a:
        raise QuarterError(f"quarter range {label(first)}..{label(last)} is empty: the end is before the start")
    return np.arange(a, b + 1)


# ---- time-series building blocks, each one matrix product or cumulative op over the quarter axis ----


def _lag_powers(n: int, phi: float) -> np.ndarray:
    """Lower-triangular matrix phi**(t-s) for s <= t."""
    lag = np.subtract.outer(np.arange(n), np.arange(n))
    return np.where(lag >= 0, phi ** np.maximum(lag, 0), 0.0)


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) along axis 0 whose stationary sd equals the shocks' sd, started in its stationary law."""
    weights = _lag_powers(shocks.shape[0], phi) * np.sqrt(1 - phi**2)
    weights[:, 0] /= np.sqrt(1 - phi**2)  # the first shock stands for the whole pre-sample past
    return np.tensordot(weights, shocks, axes=1)


def _smooth(x: np.ndarray, phi: float) -> np.ndarray:
    """Exponentially weighted mean of the past: partial adjustment and slow-moving anchors."""
    weights = _lag_powers(x.shape[0], phi)
    return weights @ x / weights.sum(axis=1)


def _episodes(t: np.ndarray, table: tuple) -> np.ndarray:
    """Sum of bumps that rise smoothly from start to peak and decay exponentially after it."""
    start, peak, amp, tau = (_column(table, i) for i in range(4))
    rise = np.clip((t - start) / np.maximum(peak - start, 1), 0, 1)
    shape = np.where(t <= peak, rise * rise * (3 - 2 * rise), np.exp(-(t - peak) / tau))
    return (amp * shape).sum(axis=0)


def _windows(t: np.ndarray, table: tuple) -> np.ndarray:
    """Sum of constant drifts over inclusive quarter windows."""
    first, last, drift = (_column(table, i) for i in range(3))
    return (((t >= first) & (t <= last)) * drift).sum(axis=0)


def _column(table: tuple, i: int) -> np.ndarray:
    """Column i of an episode table as a (rows, 1) float array; quarter labels become ordinals."""
    return np.array([to_ordinal(row[i]) if isinstance(row[i], str) else row[i] for row in table], dtype=float)[:, None]


def _lagged_mean(x: np.ndarray, lags: range) -> np.ndarray:
    """Mean of x over the given lags, repeating the first value before the sample starts."""
    idx = np.maximum(np.arange(x.size)[:, None] - np.array(lags)[None, :], 0)
    return x[idx].mean(axis=1)


def _drawdown(x: np.ndarray, window: int) -> np.ndarray:
    """Fall from the high of the trailing window (0 at a high, 0.3 after a 30 % fall)."""
    padded = np.concatenate([np.full(window - 1, x[0]), x])
    return 1 - x / np.lib.stride_tricks.sliding_window_view(padded, window).max(axis=1)


# ---- macro blocks ----


def _activity(change: np.ndarray, cpi: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """GDP and income growth (annualised %): Okun's law ties output to changes in unemployment."""
    n = change.size
    real_gdp = 2.4 - 7.0 * change + _ar1(rng.normal(0, 1.4, n), 0.3)
    deflator = 0.4 + 0.8 * _smooth(cpi, 0.7)
    real_income = 2.6 - 2.5 * change + rng.normal(0, 2.5, n)  # income growth is noisy quarter to quarter
    return {
        "real_gdp_growth": real_gdp,
        "nominal_gdp_growth": real_gdp + deflator + rng.normal(0, 0.5, n),
        "real_disposable_income_growth": real_income,
        "nominal_disposable_income_growth": real_income + cpi,
    }


def _rates(t: np.ndarray, u: np.ndarray, cpi: np.ndarray, vix: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A Taylor-rule short rate at a zero floor; term, credit and mortgage spreads on top."""
    n = t.size
    neutral = 1.4 - 2.4 / (1 + np.exp(-(t - to_ordinal("2008Q3")) / 2.0))  # neutral rate stepped down after 2008
    target = neutral + 1.5 * _smooth(cpi, 0.75) - 1.6 * (u - _U_REF)
    bill = _smooth(np.maximum(target, 0.05), 0.6)
    ten = np.maximum(1.8 + 0.55 * _smooth(bill, 0.92) + 0.35 * _smooth(cpi, 0.9) + _ar1(rng.normal(0, 0.3, n), 0.8), 0.4)
    five = np.maximum(bill + 0.6 * (ten - bill) + _ar1(rng.normal(0, 0.1, n), 0.6), 0.05)
    stress = np.maximum(vix - 15, 0)
    return {
        "treasury_3m": bill,
        "treasury_5y": five,
        "treasury_10y": ten,
        "bbb_yield": ten + 1.3 + 0.09 * stress + _ar1(rng.normal(0, 0.15, n), 0.6),
        "mortgage_rate": ten + 1.7 + 0.02 * stress + _ar1(rng.normal(0, 0.1, n), 0.6),
        "prime_rate": bill + 3.0,
    }


def _price_indices(t: np.ndarray, change: np.ndarray, vix: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Equity, house and CRE price levels from log growth: stocks fall when fear rises, property follows its cycles."""
    n = t.size
    years = (t[0] - to_ordinal("2000Q1")) / 4  # start near the trend level of the first quarter
    stocks = 0.017 - 0.008 * np.diff(vix, prepend=vix[0]) - 0.03 * change + rng.normal(0, 0.045, n)
    house = 0.011 + _windows(t, _HOUSE_DRIFTS) - 0.004 * change + _ar1(rng.normal(0, 0.005, n), 0.7)
    cre = 0.010 + _windows(t, _CRE_DRIFTS) - 0.01 * change + _ar1(rng.normal(0, 0.01, n), 0.5)
    return {
        "dow_jones_index": _level(10_500 * np.exp(0.068 * years), stocks),
        "house_price_index": _level(100 * np.exp(0.044 * years), house),
        "cre_price_index": _level(125 * np.exp(0.04 * years), cre),
    }


def _level(start: float, log_growth: np.ndarray) -> np.ndarray:
    return start * np.exp(np.cumsum(log_growth) - log_growth[0])


# ---- panel blocks; arrays are (quarter, bank, segment) ----


def _drivers(macro: pd.DataFrame, t: np.ndarray) -> dict[str, np.ndarray]:
    """Loss drivers per quarter of t, lagged so losses follow the economy; history before t is used when given."""
    needed = ["unemployment_rate", "house_price_index", "cre_price_index", "bbb_yield", "treasury_10y", "nominal_gdp_growth"]
    keys = ordinals(macro[MACRO_QUARTER]).to_numpy(dtype="float64", na_value=np.nan)
    frame = macro[needed].astype("float64").set_axis(keys)
    frame = frame[~np.isnan(keys) & ~frame.index.duplicated()]
    frame.index = frame.index.astype("int64")
    missing = np.setdiff1d(t, frame.index.to_numpy())
    if missing.size:
        raise ValueError(f"macro lacks {missing.size} quarter(s) of the panel's range, first {', '.join(labels_from_ordinals(missing[:5]))}")
    if not np.isfinite(frame.loc[t].to_numpy()).all():
        raise ValueError(f"macro has NaN or infinite values in the panel's range in one of {', '.join(needed)}")
    # Quarters before the macro starts repeat its first values; NaN in earlier history take the next value.
    history = frame.reindex(np.arange(t[0] - _HISTORY, t[-1] + 1)).bfill()
    u, hpi, cre = (history[c].to_numpy() for c in ("unemployment_rate", "house_price_index", "cre_price_index"))
    spread = (history["bbb_yield"] - history["treasury_10y"]).to_numpy()
    drivers = {
        "unemployment_gap": _lagged_mean(u, range(1, 3)) - _U_REF,
        "house_drawdown": _lagged_mean(_drawdown(hpi, _HISTORY), range(1, 2)),
        "cre_drawdown": _lagged_mean(_drawdown(cre, _HISTORY), range(1, 2)),
        "spread_gap": _lagged_mean(spread, range(1, 2)) - _NORMAL_SPREAD,
        # Books grow with last quarter's nominal GDP, smoothed: lending reacts slowly.
        "loan_growth": 0.7 * _smooth(_lagged_mean(history["nominal_gdp_growth"].to_numpy(), range(1, 2)), 0.75) / 400,
    }
    return {k: v[_HISTORY:] for k, v in drivers.items()}


def _loans(rng: np.random.Generator, n_banks: int, profiles: list[SegmentProfile], growth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loans (T, B, S) in $ thousands, and a (B, S) noise factor that is larger for smaller books."""
    n_seg = len(profiles)
    size = np.exp(rng.normal(np.log(400_000), 1.4, n_banks))  # total loans: lognormal, median $400M
    mean_share = np.array([p.loan_share for p in profiles])
    shares = rng.gamma(8 * mean_share / mean_share.sum(), size=(n_banks, n_seg))
    shares = 0.97 * shares / shares.sum(axis=1, keepdims=True) + 0.03 / n_seg  # no book is vanishingly small
    book = size[:, None] * shares
    drift = rng.normal(0, 0.006, (n_banks, n_seg))  # persistent bank-segment growth differences
    log_growth = growth[:, None, None] + drift + rng.normal(0, 0.015, (growth.size, n_banks, n_seg))
    log_growth[0] = 0
    loans = book * np.exp(np.cumsum(log_growth, axis=0))
    size_factor = np.clip((book / np.median(book, axis=0)) ** -0.15, 0.5, 2.5)
    return loans, size_factor


def _nco_rates(
    rng: np.random.Generator, t: np.ndarray, drivers: dict[str, np.ndarray], profiles: list[SegmentProfile], size_factor: np.ndarray
) -> np.ndarray:
    """Annualised NCO rates (T, B, S): macro level x bank multiplier x AR(1) x lognormal noise, plus net recoveries."""
    n_t, (n_banks, n_seg) = t.size, size_factor.shape
    log_level = _macro_log_level(t, drivers, profiles)[:, None, :]
    common, own = 0.3, 0.25  # persistent bank heterogeneity: a bank-wide part and a segment part
    multiplier = common * rng.normal(size=(n_banks, 1)) + own * rng.normal(size=(n_banks, n_seg)) - (common**2 + own**2) / 2
    idio_sd, idio_phi = 0.25, 0.75
    idio = _ar1(rng.normal(0, idio_sd, (n_t, n_banks, n_seg)), idio_phi) - idio_sd**2 / 2
    noise_sd = np.array([p.noise for p in profiles]) * size_factor
    noise = noise_sd * rng.standard_normal((n_t, n_banks, n_seg)) - noise_sd**2 / 2  # wider when the level is higher
    rates = _soft_cap(np.exp(log_level + multiplier + idio + noise))
    # Net recoveries: mostly in calm quarters, for small books, in low-loss segments.
    base = np.array([p.base for p in profiles])
    calm = np.clip(2 * base / np.exp(log_level), 0, 1)
    chance = np.array([p.net_recovery_prob for p in profiles]) * size_factor * calm
    recovered = rng.random((n_t, n_banks, n_seg)) < chance
    return np.where(recovered, -0.45 * rng.beta(1, 5, rates.shape), rates)


def _soft_cap(rates: np.ndarray, knee: float = 30.0, ceiling: float = 40.0) -> np.ndarray:
    """Bend rates above the knee smoothly towards the ceiling, so the far tail has no pile-up at a clip."""
    span = ceiling - knee
    return np.where(rates > knee, knee + span * np.tanh((rates - knee) / span), rates)


def _macro_log_level(t: np.ndarray, drivers: dict[str, np.ndarray], profiles: list[SegmentProfile]) -> np.ndarray:
    """(T, S) log of the rate an average bank would report, from drivers and seasonality."""
    coef = np.array([[p.unemployment, p.house_drawdown, p.cre_drawdown, p.spread] for p in profiles])
    x = np.column_stack([drivers["unemployment_gap"], drivers["house_drawdown"], drivers["cre_drawdown"], drivers["spread_gap"]])
    seasonal = np.array([p.seasonal for p in profiles])[:, t % 4].T
    return np.log([p.base for p in profiles]) + x @ coef.T + seasonal


def _recoveries(rng: np.random.Generator, net: np.ndarray, profiles: list[SegmentProfile]) -> np.ndarray:
    """Recoveries >= 0: a beta share of gross charge-offs, or, in a net-recovery quarter, more than them."""
    share = np.array([p.recovery_share for p in profiles])
    ratio = rng.beta(20 * share, 20 * (1 - share), net.shape)
    gross_when_negative = -net * rng.random(net.shape)  # the little that was still charged off
    return np.where(net >= 0, net * ratio / (1 - ratio), gross_when_negative - net)


def _frame(t: np.ndarray, names: list[str], rates: np.ndarray, amounts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Flatten (T, B, S) arrays into the long panel; the layout already gives the sort order."""
    n_t, n_banks, n_seg = rates.shape
    width = max(4, len(str(n_banks)))  # zero-padded, so text order is bank order
    banks = np.char.add("BANK_", np.char.zfill(np.arange(1, n_banks + 1).astype(str), width)).astype(object)
    columns = {
        KEY_COLUMNS[0]: pd.array(np.tile(np.repeat(banks, n_seg), n_t), dtype="str"),
        KEY_COLUMNS[1]: pd.array(np.tile(np.array(names, dtype=object), n_t * n_banks), dtype="str"),
        KEY_COLUMNS[2]: pd.array(np.repeat(labels_from_ordinals(t).to_numpy(dtype=object), n_banks * n_seg), dtype="str"),
        RATE_COLUMN: rates.ravel(),
    }
    columns.update({c: amounts[c].ravel() for c in OPTIONAL_AMOUNT_COLUMNS})
    return pd.DataFrame(columns)
