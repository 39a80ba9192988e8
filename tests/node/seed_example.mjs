// The seed document's Node.js example, unchanged but for the base URL (taken from the environment).
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.HEARTH_BASE_URL,
  apiKey: "lm-studio",
});

const response = await client.chat.completions.create({
  model: "lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF",
  messages: [
    { role: "system", content: "You are a helpful coding assistant." },
    { role: "user",   content: "Show me a Python function that reverses a string." },
  ],
  temperature: 0.6,
  max_tokens: 32,
});

console.log(JSON.stringify({ plain: response.choices[0].message.content }));

const stream = await client.chat.completions.create({
  model: "local-model",
  messages: [{ role: "user", content: "Say hello." }],
  max_tokens: 16,
  stream: true,
});
let streamed = "";
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
}
console.log(JSON.stringify({ streamed }));
