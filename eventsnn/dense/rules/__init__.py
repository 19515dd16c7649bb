"""Dense-mode learning rules, one module each: ``timing`` (Zhu et al., discrete),
``activation`` (surrogate gradients), ``antlr`` (Kim et al.); the PSC-family rules live
beside them."""
