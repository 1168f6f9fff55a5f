"""Visibility: the list query language and listing/counting workflows across shards.

Owns: parsing and evaluating list filters, and list/count/scan over the shards this node
serves or asks its peers for. Must not: write workflow state.
"""
