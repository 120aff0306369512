"""Rest-hooks may call the public internet only, unless local hooks are allowed."""

import pytest

from api.subscriptions.endpoints import EndpointRefused, check_endpoint


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://[::1]:6379/",
        "https://10.0.0.1/",
        "https://192.168.1.1/admin",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/",
        "https://0.0.0.0/",
        "https://localhost:5432/",
    ],
)
def test_this_machine_and_private_networks_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefused, match="public address"):
        check_endpoint(url, local_allowed=False)
    check_endpoint(url, local_allowed=True)


def test_public_addresses_pass_and_odd_ports_do_not() -> None:
    check_endpoint("https://93.184.215.14/hook", local_allowed=False)
    with pytest.raises(EndpointRefused, match="port"):
        check_endpoint("https://93.184.215.14:99999999/", local_allowed=True)
