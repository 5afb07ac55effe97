"""Hub features the runner does not use are not emulated: asked for one, the emulator answers
a 404 that names it, never a missing repo, an unknown repo type or a 405 from the repo routes
that share its paths, and never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import TOKEN


@pytest.mark.parametrize(
    ("feature", "call"),
    [
        ("webhooks", lambda api: api.list_webhooks()),
        ("collections", lambda api: api.create_collection("my picks")),
        ("likes", lambda api: api.list_liked_repos("ainative")),
        ("buckets", lambda api: api.create_bucket("ainative/scratch")),
    ],
)
def test_an_unsupported_feature_answers_a_404_that_names_it(
    hub: Any, feature: str, call: Any
) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)

    with pytest.raises(HfHubHTTPError) as raised:
        call(api)

    assert raised.value.response.status_code == 404
    assert not isinstance(raised.value, RepositoryNotFoundError)
    assert raised.value.server_message == f"The Hub emulator does not serve {feature}"


def test_unliking_a_missing_repo_is_repo_not_found_first(hub: Any) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)

    with pytest.raises(RepositoryNotFoundError):
        api.unlike("ainative/nowhere")


def test_the_repo_routes_sharing_those_paths_still_answer(hub: Any) -> None:
    """A repo named `like`, and a branch named `like`, are repos and branches as any other."""
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo("ainative/like")
    api.create_branch("ainative/like", branch="like")

    api.upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="ainative/like", revision="like"
    )

    assert api.model_info("ainative/like").id == "ainative/like"
    assert api.list_repo_files("ainative/like", revision="like") == [".gitattributes", "x.txt"]
