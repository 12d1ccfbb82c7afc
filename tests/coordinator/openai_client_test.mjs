// The official `openai` npm client against the coordinator's HTTP API (one CPU shard).
// Usage: node openai_client_test.mjs BASE_URL API_KEY EXPECTED_TEXT EXPECTED_TOKENS EXPECTED_CHAT
//        GREEDY_FIRST_TOKEN_ID HIDDEN_SIZE
import OpenAI from 'openai';

const [baseURL, apiKey, expectedText, expectedTokens, expectedChat, greedyFirst, hiddenSize] =
  process.argv.slice(2);
const model = 'stories260K';
const client = new OpenAI({ baseURL, apiKey, timeout: 30000, maxRetries: 0 });

function check(condition, message) {
  if (!condition) {
    console.log(`FAIL: ${message}`);
    process.exit(1);
  }
  console.log(`ok: ${message}`);
}

async function error_of(promise) {
  try {
    await promise;
    return { status: 200, message: '' };
  } catch (e) {
    return { status: e.status, message: e.message };
  }
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

// --- models
const models = await client.models.list();
const listed = models.data.find((m) => m.id === model);
check(listed && listed.created > 0 && listed.owned_by === 'shardwise',
      'models.list: created and owned_by');
const retrieved = await client.models.retrieve(model);
check(retrieved.id === model && retrieved.object === 'model' && retrieved.created === listed.created,
      'models.retrieve');
const missing = await error_of(client.models.retrieve('nope'));
check(missing.status === 404 && missing.message.includes("'nope' does not exist"),
      `models.retrieve of an unknown model: 404 ${missing.message}`);

// --- completions as before
const request = { model, prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
const completion = await client.completions.create(request);
check(completion.choices[0].text === expectedText &&
      completion.usage.completion_tokens === Number(expectedTokens) &&
      completion.system_fingerprint.startsWith('fp_'),
      `completions.create = shardwise generate: ${JSON.stringify(completion.choices[0].text)}`);

// --- seeds: fresh per request unless given
const sampled = { model, prompt: 'Once upon a time', max_tokens: 16, temperature: 1 };
const unseeded = new Set(), seeded = new Set();
for (let i = 0; i < 20; ++i) {
  unseeded.add((await client.completions.create(sampled)).choices[0].text);
  seeded.add((await client.completions.create({ ...sampled, seed: 1234 })).choices[0].text);
}
check(unseeded.size > 1, `20 unseeded requests at temperature 1: ${unseeded.size} distinct texts`);
check(seeded.size === 1, `20 requests with seed 1234: ${seeded.size} distinct text`);

// --- n: choice i draws with seed + i
const three = await client.completions.create({ ...sampled, n: 3, seed: 77, logprobs: 0 });
check(three.choices.length === 3 && three.choices.map((c) => c.index).join() === '0,1,2',
      'n = 3: three choices, indexed');
for (let i = 0; i < 3; ++i) {
  const alone = await client.completions.create({ ...sampled, seed: 77 + i });
  check(alone.choices[0].text === three.choices[i].text, `n = 3: choice ${i} is seed ${77 + i}'s`);
}
check(new Set(three.choices.map((c) => c.text)).size > 1, 'n = 3: the choices differ');
const tokensOf = (c) => c.logprobs.token_logprobs.length;
check(three.usage.completion_tokens === three.choices.reduce((s, c) => s + tokensOf(c), 0),
      'n = 3: usage counts every choice');

// --- best_of: the choice of highest cumulative log-probability
const sum = (c) => c.logprobs.token_logprobs.reduce((a, b) => a + b, 0);
const best = three.choices.reduce((a, b) => (sum(b) > sum(a) ? b : a));
const bestOf = await client.completions.create({ ...sampled, n: 1, best_of: 3, seed: 77 });
check(bestOf.choices.length === 1 && bestOf.choices[0].text === best.text &&
      bestOf.choices[0].logprobs === null,
      `best_of = 3: the likeliest of the three (${sum(best).toFixed(3)})`);

// --- logit_bias bans the token greedy chose first
const greedyTokens =
  (await client.completions.create({ ...request, logprobs: 0 })).choices[0].logprobs.tokens;
const banned = await client.completions.create(
  { ...request, logit_bias: { [greedyFirst]: -100 }, logprobs: 0 });
check(banned.choices[0].logprobs.tokens[0] !== greedyTokens[0] &&
      banned.choices[0].text !== expectedText,
      `logit_bias -100 on token ${greedyFirst} (${JSON.stringify(greedyTokens[0])}): not chosen`);

// --- echo
const echoed = await client.completions.create(
  { model, prompt: 'Once upon a time', max_tokens: 4, temperature: 0, echo: true, logprobs: 1 });
const echo = echoed.choices[0];
check(echo.text.startsWith('Once upon a time') &&
      echo.text === 'Once upon a time' + (await client.completions.create(
        { ...request, max_tokens: 4 })).choices[0].text &&
      echo.logprobs.tokens.length === echoed.usage.prompt_tokens + 4 &&
      echo.logprobs.token_logprobs[0] === null && echo.logprobs.token_logprobs[1] < 0,
      `echo: prompt + completion, prompt logprobs first: ${JSON.stringify(echo.text)}`);

// --- streaming: include_usage on and off
const plainStream = await collect(await client.completions.create({ ...request, stream: true }));
check(plainStream.map((c) => c.choices[0]?.text ?? '').join('') === expectedText &&
      plainStream.every((c) => c.usage === undefined && c.choices.length === 1 &&
                               c.id && c.object && c.created && c.model &&
                               c.system_fingerprint),
      'stream without stream_options: same text, no usage, every chunk complete');
const usageStream = await collect(await client.completions.create(
  { ...request, stream: true, stream_options: { include_usage: true } }));
const final = usageStream[usageStream.length - 1];
check(final.choices.length === 0 && final.usage.completion_tokens === Number(expectedTokens) &&
      usageStream.slice(0, -1).every((c) => c.usage === null && c.choices.length === 1),
      'stream with include_usage: a last chunk with choices [] and the usage');
const chatRequest = { model, messages: [{ role: 'user', content: 'Tell me a story' }],
                      max_tokens: 24, temperature: 0 };
const interleaved = await collect(await client.chat.completions.create(
  { ...chatRequest, n: 2, stream: true, temperature: 1, seed: 3 }));
const byIndex = [0, 1].map((i) => interleaved.filter((c) => c.choices[0].index === i)
  .map((c) => c.choices[0].delta.content ?? '').join(''));
const chatTwo = await client.chat.completions.create({ ...chatRequest, n: 2, temperature: 1, seed: 3 });
check(byIndex[0] === chatTwo.choices[0].message.content &&
      byIndex[1] === chatTwo.choices[1].message.content,
      'chat stream, n = 2: chunks by index rebuild both choices');

// --- chat: the shipped template, content parts, roles
const chat = await client.chat.completions.create(chatRequest);
check(chat.choices[0].message.role === 'assistant' &&
      chat.choices[0].message.content === expectedChat,
      `chat.completions.create = shardwise generate --chat: ${JSON.stringify(expectedChat)}`);
const parts = await client.chat.completions.create({
  ...chatRequest,
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me' },
                                       { type: 'text', text: 'a story' }] }] });
const joined = await client.chat.completions.create(
  { ...chatRequest, messages: [{ role: 'user', content: 'Tell me\na story' }] });
check(parts.choices[0].message.content === joined.choices[0].message.content,
      'chat content as text parts = the parts joined by newlines');
const roles = await client.chat.completions.create({
  ...chatRequest,
  messages: [{ role: 'developer', content: 'Tell stories.' },
             { role: 'user', name: 'Lily', content: 'Hi' },
             { role: 'assistant', content: 'Once' },
             { role: 'user', content: 'More' }] });
check(roles.choices[0].message.content.length > 0, 'chat with developer, name and assistant');
const withLogprobs = await client.chat.completions.create(
  { ...chatRequest, max_tokens: 4, logprobs: true, top_logprobs: 3 });
check(withLogprobs.choices[0].logprobs.content.length === 4 &&
      withLogprobs.choices[0].logprobs.content.every((t) => t.top_logprobs.length === 3),
      'chat logprobs: 4 tokens, top 3');

// --- refusals name the field
const refused = await error_of(client.chat.completions.create(
  { ...chatRequest, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }));
check(refused.status === 400 && refused.message.includes("'tools' is not supported"),
      `tools: 400 ${refused.message}`);
const format = await error_of(client.chat.completions.create(
  { ...chatRequest, response_format: { type: 'json_object' } }));
check(format.status === 400 && format.message.includes('response_format'),
      `response_format json_object: 400 ${format.message}`);
const suffix = await error_of(client.completions.create({ ...request, suffix: 'The end.' }));
check(suffix.status === 400 && suffix.message.includes("'suffix'"), `suffix: 400 ${suffix.message}`);
const image = await error_of(client.chat.completions.create({
  ...chatRequest,
  messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }));
check(image.status === 400 && image.message.includes('image_url'), `an image part: 400`);

// --- embeddings
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) /
  Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));
const embedded = await client.embeddings.create(
  { model, input: ['Once upon a time', 'Once upon a time', 'The cat sat on the mat'],
    encoding_format: 'float' });
const [e0, e1, e2] = embedded.data.map((d) => d.embedding);
check(embedded.data.length === 3 && e0.length === Number(hiddenSize),
      `embeddings.create: dimension ${e0.length} = hidden size ${hiddenSize}`);
check(Math.abs(cosine(e0, e1) - 1) < 1e-6 && cosine(e0, e2) < 0.999,
      `cosine(text, itself) = ${cosine(e0, e1).toFixed(7)}, another text ${cosine(e0, e2).toFixed(3)}`);
check(Math.abs(Math.hypot(...e0) - 1) < 1e-5, 'embeddings are normalised');
const base64 = await client.embeddings.create({ model, input: 'Once upon a time' });
check(Math.abs(cosine(base64.data[0].embedding, e0) - 1) < 1e-6,
      "embeddings.create's default (base64) decodes to the same vector");
const ids = (await (await fetch(`${baseURL.replace(/\/v1$/, '')}/tokenize`, {
  method: 'POST', headers: { Authorization: `Bearer ${apiKey}` },
  body: JSON.stringify({ model, prompt: 'Once upon a time' }) })).json()).tokens;
const fromIds = await client.embeddings.create({ model, input: ids, encoding_format: 'float' });
check(Math.abs(cosine(fromIds.data[0].embedding, e0) - 1) < 1e-6 &&
      fromIds.usage.prompt_tokens === ids.length,
      `embeddings of the token ids ${JSON.stringify(ids)} from /tokenize = of the text`);
const last = await client.embeddings.create(
  { model, input: 'Once upon a time', encoding_format: 'float', pooling: 'last' });
check(cosine(last.data[0].embedding, e0) < 0.9999, 'pooling "last" differs from the mean');
const detok = await (await fetch(`${baseURL.replace(/\/v1$/, '')}/detokenize`, {
  method: 'POST', headers: { Authorization: `Bearer ${apiKey}` },
  body: JSON.stringify({ model, tokens: ids.slice(1) }) })).json();
check(detok.prompt === 'Once upon a time', '/detokenize of /tokenize is the text');

// --- errors as before
const bad = new OpenAI({ baseURL, apiKey: 'wrong', timeout: 30000, maxRetries: 0 });
check((await error_of(bad.completions.create(request))).status === 401, 'a wrong API key: 401');
check((await error_of(client.completions.create({ ...request, model: 'nope' }))).status === 404,
      'an unknown model: 404');
check((await error_of(client.completions.create({ ...request, temperature: -1 }))).status === 400,
      'an invalid temperature: 400');
check((await error_of(client.chat.completions.create({ ...chatRequest, messages: [] }))).status ===
      400, 'chat without messages: 400');
console.log('PASS');
