// The official `openai` npm client against the coordinator's HTTP API.
// Usage: node openai_client_test.mjs BASE_URL API_KEY EXPECTED_TEXT EXPECTED_TOKENS EXPECTED_CHAT
import OpenAI from 'openai';

const [baseURL, apiKey, expectedText, expectedTokens, expectedChat] = process.argv.slice(2);
const model = 'stories260K';
const client = new OpenAI({ baseURL, apiKey, timeout: 30000, maxRetries: 0 });

function check(condition, message) {
  if (!condition) {
    console.log(`FAIL: ${message}`);
    process.exit(1);
  }
  console.log(`ok: ${message}`);
}

async function status_of(promise) {
  try {
    await promise;
    return 200;
  } catch (e) {
    return e.status;
  }
}

const models = await client.models.list();
check(models.data.some((m) => m.id === model), 'models.list');

const request = { model, prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
const completion = await client.completions.create(request);
check(completion.choices[0].text === expectedText &&
      completion.usage.completion_tokens === Number(expectedTokens),
      `completions.create = shardwise generate: ${JSON.stringify(completion.choices[0].text)}`);

let streamed = '';
let finish = null;
for await (const chunk of await client.completions.create({ ...request, stream: true })) {
  streamed += chunk.choices[0].text;
  finish = chunk.choices[0].finish_reason ?? finish;
}
check(streamed === expectedText && finish !== null, 'completions.create stream: same text, finish');

const bad = new OpenAI({ baseURL, apiKey: 'wrong', timeout: 30000, maxRetries: 0 });
check(await status_of(bad.completions.create(request)) === 401, 'a wrong API key: 401');
check(await status_of(client.completions.create({ ...request, model: 'nope' })) === 404,
      'an unknown model: 404');
check(await status_of(client.completions.create({ ...request, temperature: -1 })) === 400,
      'an invalid temperature: 400');
const chatRequest = { model, messages: [{ role: 'user', content: 'Tell me a story' }],
                      max_tokens: 24, temperature: 0 };
const chat = await client.chat.completions.create(chatRequest);
check(chat.choices[0].message.role === 'assistant' &&
      chat.choices[0].message.content === expectedChat,
      `chat.completions.create = shardwise generate --chat: ${JSON.stringify(expectedChat)}`);
let chatStreamed = '';
for await (const chunk of await client.chat.completions.create({ ...chatRequest, stream: true })) {
  chatStreamed += chunk.choices[0].delta.content ?? '';
}
check(chatStreamed === expectedChat, 'chat.completions.create stream: same text');
const withLogprobs = await client.chat.completions.create(
    { ...chatRequest, max_tokens: 4, logprobs: true, top_logprobs: 3 });
check(withLogprobs.choices[0].logprobs.content.length === 4 &&
      withLogprobs.choices[0].logprobs.content.every((t) => t.top_logprobs.length === 3),
      'chat logprobs: 4 tokens, top 3');
check(await status_of(client.chat.completions.create({ ...chatRequest, messages: [] })) === 400,
      'chat without messages: 400');
console.log('PASS');
