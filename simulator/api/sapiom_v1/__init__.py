"""sapiom_v1"""
