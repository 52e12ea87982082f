"""The one image-reference parser: what it accepts (and normalises to), what it refuses and why."""

from __future__ import annotations

import pytest

from dsl.rules import ImageRef, Invalid, cuda_image, parse_image_ref, tag_reference

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(("ref", "normalized", "familiar"), [
    ("ubuntu", "docker.io/library/ubuntu:latest", "ubuntu"),
    ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
    ("myteam/ws:1", "docker.io/myteam/ws:1", "myteam/ws:1"),
    ("myteam/sub/ws", "docker.io/myteam/sub/ws:latest", "myteam/sub/ws"),
    ("library/bb", "docker.io/library/bb:latest", "bb"),
    ("docker.io/library/bb:1", "docker.io/library/bb:1", "bb:1"),
    ("index.docker.io/library/bb", "docker.io/library/bb:latest", "bb"),
    ("index.docker.io/team/x", "docker.io/team/x:latest", "team/x"),
    ("localhost/x", "localhost/x:latest", "localhost/x"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("127.0.0.1:5000/team/x", "127.0.0.1:5000/team/x:latest", "127.0.0.1:5000/team/x"),
    ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x"),
    ("[fe80::1]/x:2", "[fe80::1]/x:2", "[fe80::1]/x:2"),
    ("ghcr.io/o/i:v1.2_rc-3", "ghcr.io/o/i:v1.2_rc-3", "ghcr.io/o/i:v1.2_rc-3"),
    ("Registry.Example:443/a", "Registry.Example:443/a:latest", "Registry.Example:443/a"),
    (f"x@{DIGEST}", f"docker.io/library/x@{DIGEST}", f"x@{DIGEST}"),
    (f"x:t@{DIGEST}", f"docker.io/library/x:t@{DIGEST}", f"x:t@{DIGEST}"),
    (f"ghcr.io/o/i@{DIGEST}", f"ghcr.io/o/i@{DIGEST}", f"ghcr.io/o/i@{DIGEST}"),
    ("a.b-c/g", "a.b-c/g:latest", "a.b-c/g"),  # '.' in the first component: a registry
    ("a__b-c---d/e", "docker.io/a__b-c---d/e:latest", "a__b-c---d/e"),
    ("nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04", "docker.io/nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04",
     "nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04"),
    ("x:" + "T" * 128, "docker.io/library/x:" + "T" * 128, "x:" + "T" * 128),
    ("a/" + "b" * 243, "docker.io/a/" + "b" * 243 + ":latest", "a/" + "b" * 243),  # 255 with docker.io/
])
def test_accepted_references_and_their_forms(ref: str, normalized: str, familiar: str) -> None:
    parsed = parse_image_ref(ref)
    assert parsed.normalized() == normalized == str(parsed)
    assert parsed.familiar() == familiar
    assert parse_image_ref(parsed.normalized()).normalized() == normalized  # a fixed point


def test_parsed_value_is_small_and_immutable() -> None:
    ref = parse_image_ref("localhost:5000/a/b:t")
    assert ref == ImageRef("localhost:5000", "a/b", "t", "")
    assert (ref.domain, ref.path, ref.tag, ref.digest, ref.name) == ("localhost:5000", "a/b", "t", "", "localhost:5000/a/b")
    with pytest.raises(AttributeError):
        ref.tag = "u"  # type: ignore[misc]


@pytest.mark.parametrize(("ref", "reason"), [
    ("", "it is empty"),
    ("Ubuntu", "repository names are lower-case"),
    ("myteam/Ws:1", "repository names are lower-case"),
    ("Foo/bar", "repository names are lower-case"),  # not a registry: no '.', ':' or localhost
    ("x:", "the tag after ':' is empty"),
    (":tag", "the repository name is missing"),
    ("a//b", "a path component is empty"),
    ("a/", "a path component is empty"),
    ("/a", "a path component is empty"),
    ("localhost:5000/", "the repository path after the registry is empty"),
    ("a b", "whitespace"),
    ("x:bad tag", "whitespace"),
    ("x\n", "whitespace"),
    ("x:-t", "bad tag '-t'"),
    ("x:.t", "bad tag '.t'"),
    ("x:é", "bad tag 'é'"),  # ASCII only, as Go's \w
    ("x:" + "t" * 129, "the tag is longer than 128 characters"),
    ("a-/b", "bad path component 'a-'"),
    ("a/_b", "bad path component '_b'"),
    ("a/b___c", "bad path component 'b___c'"),
    ("ünï/x", "bad path component"),
    ("exa mple.com/x", "whitespace"),
    ("-bad.com/x", "bad registry '-bad.com'"),
    ("[::1/x", "bad registry"),
    ("localhost:99999/x", "registry port 99999 is not in 1..65535"),
    ("a/" + "b" * 244, "the name is longer than 255 characters"),
    ("a_b.com/x", "bad registry 'a_b.com'"),
    ("x@", "a digest is 'sha256:' followed by 64 hex digits"),
    ("x@sha256:12", "a digest is 'sha256:' followed by 64 hex digits"),  # < 32 hex: not a digest at all
    ("x@sha256:" + "a" * 63, "a sha256 digest has 64 lower-case hex digits, got 63 hex digits"),
    ("x@sha256:" + "a" * 65, "got 65 hex digits"),
    ("x@sha256:" + "A" * 64, "got upper-case hex"),
    ("x@sha512:" + "a" * 128, "digest algorithm 'sha512' is not supported"),
    ("x@md5:" + "a" * 32, "digest algorithm 'md5' is not supported"),
    (f"x@{DIGEST}@{DIGEST}", "a digest is"),
    ("ubuntu:22.04; rm -rf /", "whitespace"),
])
def test_rejected_references_say_why(ref: str, reason: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_image_ref(ref)
    assert err.value.message.startswith("expected an image reference, got ")
    assert reason in err.value.message
    assert err.value.hint


def test_a_tag_reference_has_no_digest() -> None:
    assert tag_reference("myteam/ws:1").familiar() == "myteam/ws:1"
    with pytest.raises(Invalid, match="a tag cannot carry a digest"):
        tag_reference(f"myteam/ws@{DIGEST}")


@pytest.mark.parametrize(("base", "dev", "want"), [
    ("ubuntu:22.04", True, "docker.io/nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04"),  # envd's rule
    ("ubuntu:22.04", False, "docker.io/nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"),
    ("ghcr.io/mirror/ubuntu:22.04", True, "docker.io/nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04"),
    (f"ubuntu:22.04@{DIGEST}", True, "docker.io/nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04"),  # not '...04@sha256...'
    ("localhost:5000/ubuntu", True, "docker.io/nvidia/cuda:12.2.2-cudnn8-devel-ubuntu"),
])
def test_cuda_image_is_derived_from_the_parsed_base(base: str, dev: bool, want: str) -> None:
    assert cuda_image(base, "12.2.2", "8", dev=dev).normalized() == want


def test_cuda_image_past_a_tags_length_is_refused() -> None:
    with pytest.raises(Invalid, match="the CUDA image .* would not be a valid image reference: the tag is longer"):
        cuda_image("ubuntu:" + "2" * 110, "12.2.2", "8", dev=True)


def test_the_images_envdsl_itself_names_parse() -> None:
    """The helper images are references like any other (one parser, no hand-made strings)."""
    from compiler.llb._python import MICROMAMBA_IMAGE
    from dsl.engines.buildkit._container import BUILDKIT_IMAGE
    from dsl.ir import DEFAULT_BASE_IMAGE

    assert parse_image_ref(MICROMAMBA_IMAGE).domain == "ghcr.io"
    assert parse_image_ref(BUILDKIT_IMAGE).normalized() == "docker.io/moby/buildkit:latest"
    assert parse_image_ref(DEFAULT_BASE_IMAGE).normalized() == "docker.io/library/ubuntu:22.04"
