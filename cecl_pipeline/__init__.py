"""cecl-pipeline: quarterly NCO-rate forecasting for CECL."""
