"""Compression techniques. Each subpackage registers its configs with ``netpress.config``
when imported (``import netpress.techniques.prune``)."""
