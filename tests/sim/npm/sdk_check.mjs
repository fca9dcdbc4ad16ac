// The TypeScript SDK (@anthropic-ai/sdk) against the simulator at $ANTHROPIC_BASE_URL.
// Run by tests/sim/test_sim_node.py with NODE_PATH pointing at the install of install.sh.
// Prints one JSON line per check ({"check": name}) and exits non-zero on the first failure.
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(process.env.NODE_PATH + "/");
const { default: Anthropic } = await import(require.resolve("@anthropic-ai/sdk"));

const client = new Anthropic({ apiKey: "sk-test", maxRetries: 0 });
const model = "claude-sonnet-5-5";
const weather = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const done = (check, extra = {}) => console.log(JSON.stringify({ check, ...extra }));

// create
const prompt = [{ role: "user", content: "Summarise solar power in Spain." }];
const msg = await client.messages.create({ model, max_tokens: 200, messages: prompt });
assert.equal(msg.type, "message");
assert.equal(msg.content[0].type, "text");
assert.match(msg.content[0].text, /solar power in Spain/);
assert.equal(msg.stop_reason, "end_turn");
done("create");

// stream: events, then the same message as create
const stream = client.messages.stream({ model, max_tokens: 200, messages: prompt });
const kinds = [];
for await (const event of stream) kinds.push(event.type);
const streamed = await stream.finalMessage();
assert.equal(kinds[0], "message_start");
assert.equal(kinds.at(-1), "message_stop");
assert.equal(streamed.content[0].text, msg.content[0].text);
done("stream", { events: kinds.length });

// a tool round trip
const messages = [{ role: "user", content: "What is the weather in Lisbon? Use get_weather." }];
const first = await client.messages.create({ model, max_tokens: 300, messages, tools: [weather] });
assert.equal(first.stop_reason, "tool_use");
const call = first.content.find((b) => b.type === "tool_use");
assert.equal(call.name, "get_weather");
assert.equal(typeof call.input.city, "string");
messages.push({ role: "assistant", content: first.content });
messages.push({
  role: "user",
  content: [{ type: "tool_result", tool_use_id: call.id, content: "18C, sunny" }],
});
const final = await client.messages.create({ model, max_tokens: 300, messages, tools: [weather] });
assert.equal(final.stop_reason, "end_turn");
done("tool_round_trip");

// count_tokens
const counted = await client.messages.countTokens({ model, messages: prompt });
assert.ok(counted.input_tokens > 0);
assert.equal(counted.input_tokens, msg.usage.input_tokens);
done("count_tokens");

// errors: status, class, error body
async function rejects(params, Kind, status, type, text) {
  try {
    await client.messages.create(params);
  } catch (err) {
    assert.ok(err instanceof Kind, `${err} is not a ${Kind.name}`);
    assert.equal(err.status, status);
    assert.equal(err.error.type, "error");
    assert.equal(err.error.error.type, type);
    assert.ok(err.error.error.message.includes(text), err.error.error.message);
    assert.ok(err.requestID.startsWith("req_"));
    return;
  }
  assert.fail(`expected ${Kind.name}`);
}
await rejects(
  { model: "claude-nope-1", max_tokens: 10, messages: prompt },
  Anthropic.NotFoundError, 404, "not_found_error", "model: claude-nope-1",
);
await rejects(
  { model, max_tokens: 10, messages: [] },
  Anthropic.BadRequestError, 400, "invalid_request_error", "at least one message",
);
await rejects(
  { model, max_tokens: 10, messages: [{ role: "assistant", content: [call] }, prompt[0]] },
  Anthropic.BadRequestError, 400, "invalid_request_error", "without `tool_result` blocks",
);
done("errors");
