"""sapiom"""
