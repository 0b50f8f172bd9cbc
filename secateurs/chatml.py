"""The ChatML conversation format, shared by the chat data, the chat stage, evaluation
and the demo tokenizer (a bottom module: each of them imports it down).

ChatML (used by Yi, Qwen and the AEZAKMI recipe) wraps every turn as
`<|im_start|>{role}\\n{content}<|im_end|>\\n`. The template below marks assistant text with
`{% generation %}` so that trl's `assistant_only_loss` (which refuses templates without
the marker) can put the loss on assistant tokens only; the `<|im_end|>` that closes an
assistant turn is inside the marker because the model must learn to stop.
"""

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
