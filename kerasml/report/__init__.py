"""Figures and reports: `plots` (the PNGs train and evaluate write too), `build` (`kerasml report`)."""
