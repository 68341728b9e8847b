"""The ML platform component library. Importing it creates nothing."""
