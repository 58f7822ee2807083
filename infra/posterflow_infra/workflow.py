"""The finalize state machine, from the same ASL file the local cloud runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from posterflow import resources as r

PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Placeholders that are not function ARNs; the local cloud substitutes the same two
# (posterflow_local.provision.render_definition).
TABLE_PLACEHOLDER = "TableName"
SENDER_PLACEHOLDER = "SesSender"


class DefinitionError(ValueError):
    pass


def state_machine_arn(scope: Construct, name: str) -> str:
    """The ARN from the name, so functions can refer to the machine that invokes them."""
    return Stack.of(scope).format_arn(service="states", resource="stateMachine", resource_name=name,
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)


def task_resources(definition: dict[str, Any]) -> Iterator[str]:
    """Every Task's ``Resource``, including those inside Parallel branches and Map processors."""
    for state in definition.get("States", {}).values():
        if state.get("Type") == "Task" and "Resource" in state:
            yield state["Resource"]
        for branch in state.get("Branches", []):
            yield from task_resources(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from task_resources(state[key])


class FinalizeWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        spec: r.StackSpec,
        sm_spec: r.StateMachineSpec,
        functions: Mapping[str, lambda_.IFunction],
        table: dynamodb.ITable,
        sender: ses.EmailIdentity,
    ) -> None:
        super().__init__(scope, cid)
        text = sm_spec.definition_path.read_text()
        try:
            definition = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DefinitionError(f"{sm_spec.definition_path.name}: not valid JSON ({exc})") from None

        substitutions: dict[str, str] = {
            placeholder: functions[key].function_arn for placeholder, key in sm_spec.function_substitutions.items()
        }
        substitutions[TABLE_PLACEHOLDER] = table.table_name
        substitutions[SENDER_PLACEHOLDER] = spec.ses_sender
        unknown = set(PLACEHOLDER_RE.findall(text)) - substitutions.keys()
        if unknown:
            raise DefinitionError(
                f"{sm_spec.definition_path.name}: no value for placeholder(s) {', '.join(sorted(unknown))}; "
                "map them in the resource spec's function_substitutions"
            )

        log_group = logs.LogGroup(self, "Logs", log_group_name=f"/aws/vendedlogs/states/{sm_spec.name}",
                                  retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=sm_spec.name,
            # Inline (not DefinitionBody.from_file, which uploads an S3 asset): the template
            # then shows the definition, and cfn-lint checks it.
            definition_body=sfn.DefinitionBody.from_string(text),
            definition_substitutions=substitutions,
            timeout=Duration.seconds(sm_spec.timeout_s),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        self._grant(definition, sm_spec, functions, table, sender)

    def _grant(self, definition: dict[str, Any], sm_spec: r.StateMachineSpec,
               functions: Mapping[str, lambda_.IFunction], table: dynamodb.ITable, sender: ses.EmailIdentity) -> None:
        """Grant exactly the integrations the ASL uses; fail on one this file does not know."""
        function_placeholders = {"${" + p + "}": key for p, key in sm_spec.function_substitutions.items()}
        for resource in set(task_resources(definition)):
            if resource in function_placeholders:
                functions[function_placeholders[resource]].grant_invoke(self.state_machine)
            elif resource.startswith("arn:aws:states:::lambda:invoke"):
                for key in sm_spec.function_substitutions.values():
                    functions[key].grant_invoke(self.state_machine)
            elif resource.startswith("arn:aws:states:::dynamodb:"):
                table.grant_read_write_data(self.state_machine)
            elif resource.startswith(("arn:aws:states:::aws-sdk:ses:", "arn:aws:states:::aws-sdk:sesv2:")):
                sender.grant_send_email(self.state_machine)
            else:
                raise DefinitionError(
                    f"{sm_spec.definition_path.name}: task resource {resource!r} has no grant in "
                    "infra/posterflow_infra/workflow.py; add one there"
                )

    def grant_start(self, grantee: iam.IGrantable, arn: str) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[arn]))
