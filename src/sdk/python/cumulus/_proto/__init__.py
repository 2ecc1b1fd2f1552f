"""Generated protobuf code for proto/cumulus.proto (package cumulus.v1).

Regenerate with ``scripts/gen-python-proto.sh``; never edit ``cumulus_pb2.py``.
"""
