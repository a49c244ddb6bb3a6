// Drives the CAR reference server (examples/refserver) with the official
// Node SDK, tencentcloud-sdk-nodejs: the CAR lifecycle, and errors that
// come back as the SDK's own error type with the right code.
//
// The Node SDK signs the first label of the endpoint as the service and
// signs Host without its port, so it is pointed at car.localhost:PORT and
// its agent resolves every name to 127.0.0.1.
//
//   node car.mjs 127.0.0.1:PORT SECRET_ID SECRET_KEY
import http from "node:http";
import assert from "node:assert/strict";
import tencentcloud from "tencentcloud-sdk-nodejs";

const [addr, secretId, secretKey] = process.argv.slice(2);
const port = addr.split(":")[1];
const agent = new http.Agent({
  keepAlive: true,
  lookup: (hostname, opts, cb) =>
    opts && opts.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4),
});
const client = (key) =>
  new tencentcloud.car.v20220110.Client({
    credential: { secretId, secretKey: key },
    region: "ap-guangzhou",
    profile: { httpProfile: { endpoint: `car.localhost:${port}`, protocol: "http://", agent } },
  });
const car = client(secretKey);
const user = { UserId: "node-user", UserIp: "10.0.0.8" };

await car.ApplyConcurrent({ ...user, ProjectId: "cap-cartest1" });
const created = await car.CreateSession({ ...user, ClientSession: "node-client-session" });
assert.ok(created.ServerSession, "CreateSession returned a ServerSession");
const count = await car.DescribeConcurrentCount({ ProjectId: "cap-cartest1" });
assert.equal(count.Running, 1);
await car.StartPublishStream({ UserId: user.UserId });
await car.StopPublishStream({ UserId: user.UserId });
await car.DestroySession({ UserId: user.UserId });

async function code(promise) {
  try {
    await promise;
  } catch (e) {
    return e.code;
  }
  return "(no error)";
}
assert.equal(await code(car.CreateSession({ UserId: "nobody", UserIp: "10.0.0.9" })), "FailedOperation.LockTimeout");
assert.equal(await code(car.DestroySession({})), "MissingParameter");
assert.equal(await code(client("wrong-key").DescribeConcurrentCount({})), "AuthFailure.SignatureFailure");
console.log("node sdk: CAR lifecycle and errors ok");
agent.destroy();
