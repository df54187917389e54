"""The distillation pipeline: plain step functions with typed results, composed by every command.

    ingest (ingest.py)  -> Ingested: teacher logs imported, data sources loaded
    build  (build.py)   -> Dataset: the training set, recipe recorded
    train  (train.py)   -> TrainResult: one tracked run per student; an identical finished run is reused
    score  (scoring.py) -> Scoreboard: teacher answers and each student's predictions on every test
                           set, predicted once, stored, and scored from those arrays
    assess (assess.py)  -> the assessment (metrics, slices, bias, latency, cost, gates) from the
                           scoreboard's predictions, never from the store or a model (except to time it)
    report (report.py)  -> the HTML report and the error analysis

``run.py`` composes them into ``graduate run`` and ``graduate evaluate``; the ladder, the learning
curve, the label-quality comparison and the teacher audit (``graduate.experiments``) compose the
same steps. ``Project`` (project.py) is the context they share: spec, project folder and store.
"""
