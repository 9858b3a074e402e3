// The whole flowdeck lifecycle from Node.js, using only the client generated
// from proto/ (scripts/gen-clients node DIR) and the standard gRPC transport.
//
//   FLOWDECK_ADDR=127.0.0.1:4300 FLOWDECK_GEN=/path/to/generated \
//   FLOWDECK_QUEUE_TAG=node node tools/examples/lifecycle.mjs
//
// Prints one JSON line per step; exits non-zero on the first failed check.
// Error details are read from the standard grpc-status-details-bin trailer
// (google.rpc.Status with ErrorInfo and BadRequest), as any gRPC library can.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import path from "node:path";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";

const addr = process.env.FLOWDECK_ADDR;
const gen = process.env.FLOWDECK_GEN;
const tag = process.env.FLOWDECK_QUEUE_TAG || "node";
assert.ok(addr && gen, "set FLOWDECK_ADDR and FLOWDECK_GEN");
const load = (rel) => import(pathToFileURL(path.join(gen, rel)).href);

const { FlowService } = await load("flowdeck/v1/flow_service_pb.js");
const { DeploymentService } = await load("flowdeck/v1/deployment_service_pb.js");
const { FlowRunService } = await load("flowdeck/v1/flow_run_service_pb.js");
const { LogService } = await load("flowdeck/v1/log_service_pb.js");
const { WorkQueueService } = await load("flowdeck/v1/work_queue_service_pb.js");
const { StateType } = await load("flowdeck/v1/common_pb.js");
const { Health, HealthCheckResponse_ServingStatus } = await load("health/v1/health_pb.js");
const { StatusSchema } = await load("google/rpc/status_pb.js");
const { ErrorInfoSchema, BadRequestSchema } = await load("google/rpc/error_details_pb.js");
const { ServerReflection } = await load("grpc/reflection/v1alpha/reflection_pb.js");

const transport = createGrpcTransport({ baseUrl: `http://${addr}` });
const flows = createClient(FlowService, transport);
const deployments = createClient(DeploymentService, transport);
const runs = createClient(FlowRunService, transport);
const logs = createClient(LogService, transport);
const queues = createClient(WorkQueueService, transport);
const step = (name, data = {}) => console.log(JSON.stringify({ step: name, ...data }, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const suffix = Date.now().toString(36);

// 1. Reflection lists every service; health says SERVING.
const reflection = createClient(ServerReflection, transport);
async function* listRequest() {
  yield { messageRequest: { case: "listServices", value: "" } };
}
let services = [];
for await (const res of reflection.serverReflectionInfo(listRequest())) {
  if (res.messageResponse.case === "listServicesResponse") {
    services = res.messageResponse.value.service.map((s) => s.name);
  }
}
for (const name of ["FlowService", "DeploymentService", "FlowRunService", "LogService", "WorkQueueService", "AgentService", "ScheduleService"]) {
  assert.ok(services.includes(`flowdeck.v1.${name}`), `reflection lists flowdeck.v1.${name}`);
}
const health = await createClient(Health, transport).check({ service: "" });
assert.equal(health.status, HealthCheckResponse_ServingStatus.SERVING);
step("reflection-and-health", { services: services.length });

// 2. A flow and a deployment; every field round-trips.
const flowName = `node-flow-${suffix}`;
const flow = await flows.createFlow({ flow: { name: flowName }, requestId: crypto.randomUUID() });
assert.equal(flow.name, flowName);
const source = [
  "from flowdeck import flow, get_run_logger",
  "",
  "@flow(name='" + flowName + "')",
  "def greet(name: str = 'world', times: int = 1, nested: dict | None = None):",
  "    for _ in range(times):",
  "        print(f'hello {name} from a node-made deployment')",
  "    get_run_logger().info('greeted %s', name)",
  "",
].join("\n");
const anchor = new Date("2024-01-01T00:00:00Z");
// The JSON Schema of greet's parameters, written by hand as any client may:
// the server checks every run's parameters against it.
const parameterSchema = {
  type: "object",
  properties: {
    name: { type: "string" },
    times: { type: "integer", minimum: 1 },
    nested: { anyOf: [{ type: "object" }, { type: "null" }] },
  },
  required: ["name"],
  additionalProperties: false,
};
const created = await deployments.createDeployment({
  requestId: crypto.randomUUID(),
  deployment: {
    name: "from-node",
    flowName,
    flowData: { encoding: "text", blob: JSON.stringify({ source, flow_name: flowName, filename: "greet.py" }) },
    schedule: { kind: { case: "interval", value: { interval: { seconds: 3600n }, anchorDate: timestampFromDate(anchor), timezone: "Europe/Berlin" } } },
    parameters: { name: "Node", times: 2, nested: { list: [1, "two", true, null] } },
    tags: [tag, "polyglot"],
    flowRunner: { type: "subprocess", config: { env: { GREETING: "hi" } } },
    parameterSchema,
  },
});
assert.equal(created.created, true);
const dep = await deployments.getDeploymentByName({ name: `${flowName}/from-node` });
assert.equal(dep.id, created.deployment.id);
assert.equal(dep.flowId, flow.id);
assert.equal(dep.flowName, flowName);
assert.equal(dep.flowData.encoding, "text");
assert.deepEqual(dep.parameters, { name: "Node", times: 2, nested: { list: [1, "two", true, null] } });
assert.deepEqual(dep.tags, [tag, "polyglot"]);
assert.equal(dep.flowRunner.type, "subprocess");
assert.deepEqual(dep.flowRunner.config, { env: { GREETING: "hi" } });
assert.equal(dep.schedule.kind.case, "interval");
assert.equal(dep.schedule.kind.value.interval.seconds, 3600n);
assert.equal(dep.schedule.kind.value.timezone, "Europe/Berlin");
assert.equal(timestampDate(dep.schedule.kind.value.anchorDate).toISOString(), anchor.toISOString());
assert.equal(dep.isScheduleActive, true);
assert.deepEqual(dep.parameterSchema, parameterSchema);
const createdAt = timestampDate(dep.created);
assert.ok(Math.abs(createdAt.getTime() - Date.now()) < 60_000, "created is a real timestamp");
step("deployment-round-trip", { id: dep.id, created: createdAt.toISOString() });

// 3. The scheduler's runs exist at once; a run with overridden parameters.
const scheduled = await runs.listFlowRuns({ deploymentId: dep.id, stateTypes: [StateType.SCHEDULED], pageSize: 100 });
const auto = scheduled.flowRuns.filter((r) => r.autoScheduled);
assert.ok(auto.length >= 3, `the scheduler made runs (${auto.length})`);
for (const r of auto) {
  assert.ok(r.idempotencyKey.startsWith(`scheduled ${dep.id} `));
  assert.equal(r.state.type, StateType.SCHEDULED);
}
// Pause the schedule so only our run is due for the agent.
await deployments.updateDeployment({ deployment: { id: dep.id, isScheduleActive: false }, updateMask: { paths: ["is_schedule_active"] }, requestId: crypto.randomUUID() });
const run = await runs.createFlowRunFromDeployment({
  deployment: { case: "deploymentName", value: `${flowName}/from-node` },
  parameters: { name: "Ada" },
  requestId: crypto.randomUUID(),
});
assert.deepEqual(run.parameters, { name: "Ada", times: 2, nested: { list: [1, "two", true, null] } });
assert.equal(run.deploymentId, dep.id);
step("scheduled-and-manual-runs", { auto: auto.length, run: run.id, name: run.name });

// 4. A Python agent serving the queue runs it; its logs are readable here.
let final;
for (let i = 0; i < 600; i++) {
  final = await runs.getFlowRun({ id: run.id });
  if ([StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED].includes(final.state.type)) break;
  await sleep(100);
}
assert.equal(final.state.type, StateType.COMPLETED, `run ended ${StateType[final.state.type]}: ${final.state.message}`);
assert.ok(final.stateHistory.length >= 3);
const lines = (await logs.listLogs({ flowRunId: run.id })).logs.map((l) => l.message);
assert.ok(lines.some((m) => m.includes("hello Ada from a node-made deployment")), `logs: ${JSON.stringify(lines)}`);
assert.ok(lines.some((m) => m.includes("greeted Ada")));
step("agent-completed", { state: StateType[final.state.type], logs: lines.length });

// 5. Each error class on purpose.
async function expectCode(code, fn, text) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ConnectError, `a ConnectError, got ${e}`);
    assert.equal(e.code, code, `expected ${Code[code]}, got ${Code[e.code]}: ${e.rawMessage}`);
    if (text) assert.ok(e.rawMessage.includes(text), `message names ${text}: ${e.rawMessage}`);
    return e;
  }
  assert.fail(`expected ${Code[code]}`);
}
const errors = {};
const notFound = await expectCode(Code.NotFound, () => deployments.getDeploymentByName({ name: `${flowName}/no-such` }));
errors.NOT_FOUND = notFound.rawMessage;
const qname = `node-queue-${suffix}`;
await queues.createWorkQueue({ workQueue: { name: qname, filter: { tags: ["nothing-matches"] } } });
errors.ALREADY_EXISTS = (await expectCode(Code.AlreadyExists, () => queues.createWorkQueue({ workQueue: { name: qname } }))).rawMessage;
const invalid = await expectCode(Code.InvalidArgument, () => deployments.createDeployment({ deployment: { name: "", flowName } }), "deployment.name");
errors.INVALID_ARGUMENT = invalid.rawMessage;
errors.INVALID_ARGUMENT_ENUM = (await expectCode(Code.InvalidArgument, () => runs.setFlowRunState({ flowRunId: run.id, state: { type: StateType.UNSPECIFIED } }), "state.type")).rawMessage;
errors.FAILED_PRECONDITION = (await expectCode(Code.FailedPrecondition, () => runs.setFlowRunState({ flowRunId: run.id, state: { type: StateType.RUNNING } }), "COMPLETED")).rawMessage;
step("error-codes", errors);

// 6. The standard details: google.rpc.Status in the grpc-status-details-bin
// trailer, decoded with nothing but the generated google/rpc types.
function statusDetails(e) {
  const bin = e.metadata.get("grpc-status-details-bin");
  assert.ok(bin, `grpc-status-details-bin is sent with ${Code[e.code]}`);
  const status = fromBinary(StatusSchema, Buffer.from(bin, "base64"));
  assert.equal(status.code, e.code);
  assert.equal(status.message, e.rawMessage);
  const find = (schema) => status.details.map((any) => anyUnpack(any, schema)).find(Boolean);
  const info = find(ErrorInfoSchema);
  assert.ok(info, `an ErrorInfo with ${Code[e.code]}`);
  // Connect's own reader finds the same details.
  assert.equal(e.findDetails(ErrorInfoSchema)[0]?.reason, info.reason);
  const bad = find(BadRequestSchema);
  return {
    reason: info.reason,
    domain: info.domain,
    metadata: info.metadata,
    violations: bad ? bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })) : [],
  };
}
const details = { NOT_FOUND: statusDetails(notFound), INVALID_ARGUMENT: statusDetails(invalid) };
assert.equal(details.NOT_FOUND.reason, "DEPLOYMENT_NOT_FOUND");
assert.deepEqual(details.NOT_FOUND.violations, []);
assert.equal(details.INVALID_ARGUMENT.reason, "INVALID_FIELD");
assert.equal(details.INVALID_ARGUMENT.violations[0]?.field, "deployment.name");
step("error-details", details);

// 7. The server checks parameters against the schema: a wrong type, a missing
// required parameter and an unknown one are refused with a BadRequest naming
// each; no run is made. A good run is made with the values as given.
const checked = (await deployments.createDeployment({
  requestId: crypto.randomUUID(),
  deployment: { name: "checked", flowName, flowData: dep.flowData, parameterSchema },
})).deployment;
const refusals = {};
for (const [label, parameters] of [
  ["wrong-type", { name: "x", times: "abc" }],
  ["missing-required", { times: 1 }],
  ["unknown", { name: "x", colour: "red" }],
]) {
  const e = await expectCode(Code.InvalidArgument, () => runs.createFlowRunFromDeployment({
    deployment: { case: "deploymentId", value: checked.id }, parameters, requestId: crypto.randomUUID(),
  }), "parameters.");
  const { reason, violations } = statusDetails(e);
  assert.equal(reason, "INVALID_PARAMETERS");
  refusals[label] = violations;
}
const none = await runs.listFlowRuns({ deploymentId: checked.id });
assert.equal(none.flowRuns.length, 0, "no run is created when parameters are refused");
const good = await runs.createFlowRunFromDeployment({
  deployment: { case: "deploymentId", value: checked.id }, parameters: { name: "Ada", times: 3 },
  requestId: crypto.randomUUID(),
});
assert.deepEqual(good.parameters, { name: "Ada", times: 3 });
step("parameter-violations", refusals);
step("done");
