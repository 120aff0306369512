"""The gateway's pairing page (`vigil gateway --web PORT`): a patient at home pairs and
unpairs wearables from a phone on the home network, into the same registry as `vigil pair`.
"""
