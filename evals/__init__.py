"""evals: judge-free chain-of-thought evaluation (MathVista and friends) through lmms-eval."""
