"""Pages from records: the statistics and evaluation reports, and each model's static site."""
