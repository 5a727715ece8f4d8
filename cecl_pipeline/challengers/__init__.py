"""The statistical challengers the policy must beat, fitted on the same 12-quarter windows as the prompts.

Vectorised over series (``histories`` is an [N, T] array, oldest quarter first), because the
combining env puts their forecasts into every prompt and a bank panel has tens of thousands of
series a quarter. statsmodels and pmdarima are the numerical references in the tests and benchmarks.
"""
