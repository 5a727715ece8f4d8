"""The challengers' names, importable without statsmodels or arch (the Dagster code location reads them at load)."""

CHALLENGERS = ("persistence", "mean_4q", "ar1", "arima_110", "ar1_garch11", "auto_ets", "auto_arima", "theta", "comb",
               "naive_comb")
