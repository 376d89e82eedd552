"""The training stage: architectures and backbones, the input pipeline and its augmentation,
devices (`distribute`), the recipe that trains (`train`) and the search around it (`tune`)."""
