"""Stats of a finished build: tables (summary), plots (PNG), FLAVA Table 1 comparison, dataset card.

Entry points: ``load.load_build(dir)``, ``summary.format_summary(build)``,
``plots.save_all_plots(build, out_dir)``, ``card.write_dataset_card(dir)``.
Submodules are imported on use so that ``pmd.stats.card`` stays light for the build jobs.
"""
