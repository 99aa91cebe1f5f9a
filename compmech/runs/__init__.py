"""The experiment runner: config, phases of a run, analyses, figures of a run, reproduce, report and the CLI.

The only code that ties the packages together (`hmm_processes`, the theory in `compmech`,
`predictive_models`, `probes`, `figures`); the theory modules one level up never import from here.
"""
