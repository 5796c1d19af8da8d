"""Reports: the HTML path-diff page and the Graphviz divergence graphs."""
