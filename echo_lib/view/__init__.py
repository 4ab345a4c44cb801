"""The view: plots, cell outputs and the widget front; matplotlib and ipywidgets load lazily."""
