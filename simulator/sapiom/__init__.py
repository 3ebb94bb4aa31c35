"""Sapiom, no HTTP and no JSON: prices, transactions, the x402 wire values, the payment gate, the policy, the
feature.
"""
