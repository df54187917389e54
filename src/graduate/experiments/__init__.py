"""Experiments over students: the ladder (smallest kind first, stop once the criteria hold),
learning curves (what more labels would buy), run comparison and MLflow logging."""
