package bridge

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
)

// AMQPConfig is one RabbitMQ bridge: a queue bound to a producer's
// exchange, carrying OTP send requests and producer events.
type AMQPConfig struct {
	Name string `yaml:"name"`
	// URL is amqp://user@host:5672/vhost; with its password it comes from
	// HERALD_BRIDGE_<NAME>_URL or URLFile instead.
	URL     string `yaml:"url"`
	URLFile string `yaml:"urlFile"`
	// Exchange is the producer's exchange (topic, durable), declared if
	// missing; Queue (default herald.<name>) is bound to it with
	// BindingKey (default #).
	Exchange   string `yaml:"exchange"`
	Queue      string `yaml:"queue"`
	BindingKey string `yaml:"bindingKey"`
	// DeadLetterExchange receives what Herald refuses, with the reason.
	DeadLetterExchange string `yaml:"deadLetterExchange"`
	// OutcomeExchange receives the outcome of each send request that has
	// no reply-to (routing key otp.outcome.<app>); empty: none published.
	OutcomeExchange string `yaml:"outcomeExchange"`
	// Prefetch is how many messages one bridge process holds at a time
	// (default 16); processes on one queue compete for its messages.
	Prefetch int         `yaml:"prefetch"`
	Retry    RetryConfig `yaml:"retry"`
}

func (c *AMQPConfig) check() error {
	c.Retry.defaults()
	return nil
}

func addAMQP(*message.Router, AMQPConfig, *deps) (source, error) {
	return source{}, errors.New("amqp: not built yet")
}
