"""What every room stands on: settings, the database and models, Redis, errors, logs, metrics."""
