"""nerfstudio's nerfacto (its torch hash encoding on a CPU): a reference method, its code nerfstudio's."""
