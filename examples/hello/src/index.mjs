// The example function: greets, and says which runtime it runs on, so validation
// can check it runs on the baked Node.js and not on whatever the machine has.
export const handler = async (event, context) => {
  if (typeof event?.name !== 'undefined' && typeof event.name !== 'string') {
    const error = new Error('name must be a string');
    error.name = 'ValidationError';
    throw error;
  }
  return {
    message: `Hello, ${event?.name || 'world'}!`,
    runtime: process.version,
    function: `${context.functionName}:${context.functionVersion}`,
  };
};
