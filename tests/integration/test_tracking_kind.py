"""Experiment tracking on kind (stack-b's cluster, made offline from a bundle: the MLflow image came in it): the
server answers on its NodePort, its pod runs restricted; alice logs, registers and reads back a run with MLflow's
own client and her kubeconfig, bob is refused each of hers and logs his own (e2e/scenarios/tracking.yaml)."""

import pytest

from tests.integration.clusters import STACK_COMPONENTS, scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]


def test_the_server_holds_no_right_over_users_objects(stack):
    """It lists namespaces (the workspaces) and nothing else: each caller's rights are asked with the caller's token."""
    from kubernetes import client

    from appliance.kube import Kube

    api = client.AuthorizationV1Api(Kube(stack[1]["kubeconfig"]).api)

    def may(verb: str, resource: str, namespace: str = "", group: str = "") -> bool:
        attrs = client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace or None, group=group)
        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user="system:serviceaccount:tracking:mlflow", groups=["system:serviceaccounts", "system:serviceaccounts:tracking", "system:authenticated"],
            resource_attributes=attrs))
        return api.create_subject_access_review(review).status.allowed

    assert may("list", "namespaces") and may("watch", "namespaces")
    for ask in (("get", "secrets", "user-alice"), ("list", "experiments", "user-alice", "mlflow.kubeflow.org"), ("create", "pods", "user-alice"),
                ("list", "secrets", "tracking"), ("create", "subjectaccessreviews", "", "authorization.k8s.io")):
        assert not may(*ask), ask


def test_alice_tracks_her_runs_and_bob_is_refused_them(stack, tmp_path):
    scenario_passes(stack[1], "kind", STACK_COMPONENTS, "tracking", tmp_path)
